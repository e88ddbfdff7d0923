package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import java.util.function.Supplier;

/** Runs a computation in its own {@link NDScope}: every temporary dies with it, only the results survive. */
final class Scoped {
    private Scoped() {}

    /** Returns the body's result, closing all other arrays it created; the result joins the enclosing scope. */
    static NDArray run(Supplier<NDArray> body) {
        return runAll(() -> new NDList(body.get())).singletonOrThrow();
    }

    /** Like {@link #run} for several results. */
    static NDList runAll(Supplier<NDList> body) {
        NDList out;
        try (NDScope scope = new NDScope()) {
            out = body.get();
            out.forEach(NDScope::unregister);
        }
        out.forEach(NDScope::register);
        return out;
    }
}
