package io.qlora4j.optim;

/**
 * Where an optimizer's state is and what moving it cost, for progress lines, metrics and tests.
 * The device tier holds pages in device arrays (on the CPU: arrays the engine allocates); the host
 * tier holds evicted or loaded pages in direct buffers. Per-step counts cover the latest {@code
 * step}.
 *
 * @param budgetBytes the device budget for state ({@link Long#MAX_VALUE} when unlimited, -1 while
 *     the device's default is not yet known: it is read at the first step)
 * @param deviceBytes state bytes on the device now
 * @param hostBytes state bytes that live only on the host now
 * @param pagedInBytes bytes copied host to device during the latest step
 * @param pagedOutBytes bytes copied device to host during the latest step
 * @param maxDeviceBytes the most state bytes the device ever held at once
 */
public record PagingStats(
        long budgetBytes,
        long deviceBytes,
        long hostBytes,
        long pagedInBytes,
        long pagedOutBytes,
        long maxDeviceBytes) {}
