package io.qlora4j.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import java.util.function.Supplier;

/**
 * Runs a device computation whose intermediates die at once and whose result lives on: what a device weight's
 * dequantization does on every use, so that a training step's memory does not grow with the number of uses.
 */
public final class ScopedResult {
    private ScopedResult() {}

    /**
     * {@code body}'s result, attached to {@code owner} and registered with the innermost open {@link NDScope} (if
     * any); every other array {@code body} created is closed before this returns.
     */
    public static NDArray compute(NDManager owner, Supplier<NDArray> body) {
        NDArray out;
        try (NDScope scope = new NDScope()) {
            out = body.get();
            NDScope.unregister(out);
        }
        NDScope.register(out);
        out.attach(owner);
        return out;
    }
}
