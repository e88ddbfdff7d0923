/**
 * What qlora4j does through the CUDA runtime itself ({@code org.bytedeco:cuda}) rather than through the engine: the
 * paged optimizer's pinned host pages, their copies on a side stream, and the device's free memory. Only the GPU
 * path loads this package ({@link io.qlora4j.optim.HostPages#forDevice}); its native libraries ship in the GPU
 * bundle alone.
 */
package io.qlora4j.cuda;
