/**
 * Jobs that run a float checkpoint one decoder block at a time through {@code ModelLoader.block}, whatever its
 * family: AQLM's checkpoint quantizer, which records each linear's {@code X^T X} ({@code
 * XtxRecorder}) and quantizes the block against it.
 */
package io.qlora4j.model.calibration;

