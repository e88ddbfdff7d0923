package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import java.util.List;

/**
 * Float32 state, as torch keeps it: a page is two float32 arrays ({@code exp_avg}, {@code
 * exp_avg_sq}) that the update changes in place, so a resident page costs no copy at all.
 * Checkpoint keys {@code <param>.exp_avg} and {@code <param>.exp_avg_sq}, shaped like the
 * parameter.
 */
final class Float32Format implements PageFormat {

    static final Float32Format INSTANCE = new Float32Format();

    private static final List<String> SUFFIXES =
            List.of(StateKind.EXP_AVG.key(), StateKind.EXP_AVG_SQ.key());

    private Float32Format() {}

    @Override
    public long pageElements(long pageBytes) {
        return Math.max(1, pageBytes / (2L * Float.BYTES));
    }

    @Override
    public long bytes(long elements) {
        return Math.multiplyExact(elements, 2L * Float.BYTES);
    }

    @Override
    public List<PagePart> parts(int elements) {
        PagePart moment = new PagePart(DataType.FLOAT32, elements);
        return List.of(moment, moment);
    }

    @Override
    public Moments open(NDArray[] page, NDArray like) {
        return new Moments(page[0], page[1]);
    }

    @Override
    public void close(NDArray[] page, Moments working) {
        // the update ran in place on the page's own arrays
    }

    @Override
    public List<String> suffixes() {
        return SUFFIXES;
    }
}
