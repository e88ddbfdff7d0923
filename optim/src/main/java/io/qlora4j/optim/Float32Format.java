package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;

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

    @Override
    public void export(String param, Shape shape, StateLayout layout, List<ByteBuffer> pages,
            Map<String, StateTensor> out) {
        float[][] moments = new float[2][Math.toIntExact(layout.size())];
        for (int page = 0; page < pages.size(); page++) {
            List<PagePart> parts = parts(layout.elements(page));
            int offset = Math.toIntExact(page * layout.pageElements());
            for (int kind = 0; kind < 2; kind++) {
                PagePart.slice(pages.get(page), parts, kind)
                        .asFloatBuffer()
                        .get(moments[kind], offset, layout.elements(page));
            }
        }
        for (int kind = 0; kind < 2; kind++) {
            out.put(param + "." + SUFFIXES.get(kind), new StateTensor(shape, moments[kind]));
        }
    }

    @Override
    public Shape shape(String param, Map<String, StateTensor> tensors) {
        Shape shape = tensors.get(SUFFIXES.get(0)).shape();
        Shape other = tensors.get(SUFFIXES.get(1)).shape();
        if (!other.equals(shape)) {
            throw new IllegalArgumentException(
                    "optimizer state '" + param + "." + SUFFIXES.get(1) + "' has shape " + other
                            + " but '" + param + "." + SUFFIXES.get(0) + "' has shape " + shape);
        }
        return shape;
    }

    @Override
    public List<ByteBuffer> pages(String param, Map<String, StateTensor> tensors,
            StateLayout layout) {
        ByteBuffer[] pages = new ByteBuffer[layout.pages()];
        for (int page = 0; page < pages.length; page++) {
            int elements = layout.elements(page);
            int offset = Math.toIntExact(page * layout.pageElements());
            ByteBuffer bytes =
                    ByteBuffer.allocateDirect(Math.toIntExact(PagePart.bytes(parts(elements))))
                            .order(ByteOrder.nativeOrder());
            for (String suffix : SUFFIXES) {
                bytes.asFloatBuffer().put(tensors.get(suffix).values(), offset, elements);
                bytes.position(bytes.position() + elements * Float.BYTES);
            }
            pages[page] = bytes.clear();
        }
        return List.of(pages);
    }
}
