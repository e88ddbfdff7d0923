package io.qlora4j.optim;

import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;

/**
 * Converts between a parameter's state pages (host bytes) and its checkpoint tensors: one float32
 * tensor per page part, the part's values of all pages back to back (uint8 codes as whole
 * numbers), shaped like the parameter when the part has one value per element, else flat.
 */
final class PageTensors {

    private PageTensors() {}

    /** Adds the parameter's checkpoint tensors, read from each page's host bytes, to {@code out}. */
    static void export(String param, PageFormat format, Shape shape, StateLayout layout,
            List<ByteBuffer> pages, Map<String, StateTensor> out) {
        long[] totals = totals(format, layout);
        float[][] values = new float[totals.length][];
        for (int i = 0; i < totals.length; i++) {
            values[i] = new float[Math.toIntExact(totals[i])];
        }
        int[] offsets = new int[totals.length];
        for (int page = 0; page < pages.size(); page++) {
            List<PagePart> parts = format.parts(layout.elements(page));
            for (int i = 0; i < parts.size(); i++) {
                ByteBuffer bytes = PagePart.slice(pages.get(page), parts, i);
                for (int j = 0; j < parts.get(i).count(); j++) {
                    values[i][offsets[i]++] = parts.get(i).type() == DataType.UINT8
                            ? bytes.get(j) & 0xFF
                            : bytes.getFloat(j * Float.BYTES);
                }
            }
        }
        for (int i = 0; i < totals.length; i++) {
            Shape partShape = totals[i] == layout.size() ? shape : new Shape(totals[i]);
            out.put(param + "." + format.suffixes().get(i), new StateTensor(partShape, values[i]));
        }
    }

    /**
     * The parameter shape that checkpoint tensors keyed by suffix describe (the first part's),
     * after checking every part's shape and that codes are whole numbers 0..255.
     */
    static Shape shape(String param, PageFormat format, Map<String, StateTensor> tensors) {
        Shape shape = tensors.get(format.suffixes().get(0)).shape();
        StateLayout whole = new StateLayout(shape.size(), Math.max(1, shape.size()));
        long[] totals = totals(format, whole);
        List<PagePart> parts = format.parts(Math.toIntExact(shape.size()));
        for (int i = 0; i < totals.length; i++) {
            String key = param + "." + format.suffixes().get(i);
            StateTensor tensor = tensors.get(format.suffixes().get(i));
            Shape expected = totals[i] == shape.size() ? shape : new Shape(totals[i]);
            if (!tensor.shape().equals(expected)) {
                throw new IllegalArgumentException(
                        "optimizer state '" + key + "' has shape " + tensor.shape() + ", expected "
                                + expected);
            }
            if (parts.get(i).type() == DataType.UINT8) {
                checkCodes(key, tensor.values());
            }
        }
        return shape;
    }

    /** Cuts checkpoint tensors keyed by suffix into pages' host bytes (direct, native order). */
    static List<ByteBuffer> pages(PageFormat format, Map<String, StateTensor> tensors,
            StateLayout layout) {
        ByteBuffer[] pages = new ByteBuffer[layout.pages()];
        int[] offsets = new int[format.suffixes().size()];
        for (int page = 0; page < pages.length; page++) {
            List<PagePart> parts = format.parts(layout.elements(page));
            pages[page] = ByteBuffer.allocateDirect(Math.toIntExact(PagePart.bytes(parts)))
                    .order(ByteOrder.nativeOrder());
            for (int i = 0; i < parts.size(); i++) {
                ByteBuffer bytes = PagePart.slice(pages[page], parts, i);
                float[] values = tensors.get(format.suffixes().get(i)).values();
                for (int j = 0; j < parts.get(i).count(); j++) {
                    float value = values[offsets[i]++];
                    if (parts.get(i).type() == DataType.UINT8) {
                        bytes.put(j, (byte) value);
                    } else {
                        bytes.putFloat(j * Float.BYTES, value);
                    }
                }
            }
        }
        return List.of(pages);
    }

    /** The number of values of each part over all of the layout's pages. */
    private static long[] totals(PageFormat format, StateLayout layout) {
        long[] totals = new long[format.suffixes().size()];
        for (int page = 0; page < layout.pages(); page++) {
            List<PagePart> parts = format.parts(layout.elements(page));
            for (int i = 0; i < parts.size(); i++) {
                totals[i] += parts.get(i).count();
            }
        }
        return totals;
    }

    private static void checkCodes(String key, float[] values) {
        for (int i = 0; i < values.length; i++) {
            float code = values[i];
            if (!(code >= 0 && code <= 255 && code == Math.rint(code))) {
                throw new IllegalArgumentException(
                        "optimizer state '" + key + "' holds " + code + " at element " + i
                                + "; 8-bit codes are whole numbers 0..255");
            }
        }
    }
}
