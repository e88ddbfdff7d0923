package io.qlora4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.quant.HalfFloats;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import java.util.function.Function;

/**
 * A frozen matrix {@code [rows, cols]} held on the device as float16 with a power-of-two scale per
 * row, which holds every value of a bfloat16 or float16 checkpoint exactly (a row may span 2^31
 * between its largest and smallest nonzero magnitude) in half the bytes of float32. QLoRA keeps
 * {@code embed_tokens} and {@code lm_head} in 16 bits; DJL has no bfloat16, so this is how qlora4j
 * does the same without changing a single weight. Products widen one chunk of rows at a time to the
 * input's type, so no full-precision copy of the matrix exists unless a caller asks for one with {@link #hold}
 * (the loss head, to widen once for all its products instead of once per product). It serves as lm_head and as the
 * token embedding (and as both when they are tied).
 */
public final class Float16Weight extends BiasedLinear implements TokenEmbedding {
    /** Elements read or widened at once: 16 MB of float32. */
    static final int CHUNK_ELEMENTS = 1 << 22;
    /** Rows are scaled so that their largest magnitude lies in [2^14, 2^15), below float16's 65504. */
    private static final int TOP_EXPONENT = 14;

    private final NDArray half;
    private final NDArray scales;
    private final long rowsPerChunk;
    /** The row chunks widened by {@link #hold}, or null. */
    private NDList held;

    private Float16Weight(NDArray half, NDArray scales, NDArray bias, int chunkElements) {
        super(bias, half.getShape().get(0));
        this.half = half;
        this.scales = scales;
        this.rowsPerChunk = Math.max(1, chunkElements / half.getShape().get(1));
    }

    /**
     * Reads the 2-D tensor {@code name} into {@code manager}'s device in 16 bits, streaming row chunks;
     * null when some value has no exact float16-times-row-scale form (then keep it in float32).
     */
    public static Float16Weight read(SafetensorsReader reader, String name, NDManager manager) throws ModelException {
        return read(reader, name, null, manager, CHUNK_ELEMENTS);
    }

    /**
     * {@link #read} as a linear layer with the dense {@code bias} {@code [rows]} (or null) added after the product:
     * a frozen projection held as the checkpoint stores it (the bias is not closed when null is returned).
     */
    public static Float16Weight read(SafetensorsReader reader, String name, NDArray bias, NDManager manager)
            throws ModelException {
        return read(reader, name, bias, manager, CHUNK_ELEMENTS);
    }

    /** {@link #read} with an explicit chunk size (elements) for reading and for products, for tests. */
    static Float16Weight read(SafetensorsReader reader, String name, NDArray bias, NDManager manager,
            int chunkElements) throws ModelException {
        float[] rowScales = new float[Math.toIntExact(reader.info(name).shape()[0])];
        NDManager arrays = manager.newSubManager();
        NDArray half = RowChunks.upload(reader, name, arrays, DataType.FLOAT16, chunkElements,
                (values, firstRow, rows, cols, staging) -> {
                    ShortBuffer out = staging.asShortBuffer();
                    for (int r = 0; r < rows; r++) {
                        if (!encodeRow(values, r * cols, cols, out, rowScales, (int) firstRow + r)) {
                            return false;
                        }
                    }
                    return true;
                });
        if (half == null) {
            arrays.close();
            return null;
        }
        return new Float16Weight(half, arrays.create(rowScales, new Shape(rowScales.length, 1)), bias,
                chunkElements);
    }

    /**
     * Writes the float16 codes of {@code values[from, from + cols)} to {@code out} and the row's scale to
     * {@code scales[row]}; false when a value would not come back exactly as {@code code * scale}.
     */
    static boolean encodeRow(float[] values, int from, int cols, ShortBuffer out, float[] scales, int row) {
        int maxBits = 0;
        for (int i = from; i < from + cols; i++) {
            maxBits = Math.max(maxBits, Float.floatToRawIntBits(values[i]) & 0x7FFFFFFF);
        }
        if (maxBits >= 0x7F800000) {
            return false; // infinity or NaN
        }
        int shift = maxBits == 0 ? 0 : TOP_EXPONENT - Math.getExponent(Float.intBitsToFloat(maxBits));
        float scale = Math.scalb(1f, -shift);
        if (Math.getExponent(scale) < Float.MIN_EXPONENT) {
            return false; // a subnormal scale would round the products
        }
        for (int i = from; i < from + cols; i++) {
            short code = HalfFloats.floatToF16(Math.scalb(values[i], shift));
            if (HalfFloats.f16ToFloat(code) * scale != values[i]) {
                return false;
            }
            out.put(code);
        }
        scales[row] = scale;
        return true;
    }

    /** Rows {@code [from, to)} as {@code type}: code times row scale, computed in float32 (exact), then cast. */
    private NDArray widened(long from, long to, DataType type) {
        NDArray w;
        try (NDScope scope = new NDScope()) {
            NDIndex rows = new NDIndex("{}:{}", from, to);
            w = half.get(rows).toType(DataType.FLOAT32, false).mul(scales.get(rows)).toType(type, false);
            NDScope.unregister(w);
        }
        return w;
    }

    /**
     * Widens every row chunk to {@code type} once and lends them to the products in that type until the hold is
     * closed: the same chunks the products widen one at a time without it, so the results are the same bits, for the
     * whole matrix in {@code type} ({@link #heldBytes}) instead of one chunk.
     */
    @Override
    public WeightHold hold(DataType type) {
        if (held != null) {
            return WeightHold.NONE;
        }
        NDList chunks = new NDList();
        long rows = outFeatures();
        for (long r = 0; r < rows; r += rowsPerChunk) {
            chunks.add(widened(r, Math.min(rows, r + rowsPerChunk), type));
        }
        held = chunks;
        return () -> {
            held = null;
            chunks.close();
        };
    }

    @Override
    public long heldBytes(DataType type) {
        return half.size() * type.getNumOfBytes();
    }

    /** Row chunk {@code index} ({@code [from, to)}) as {@code type}: a held one, or one widened for the caller to close. */
    private NDArray chunk(int index, long from, long to, DataType type) {
        return lent(type) ? held.get(index) : widened(from, to, type);
    }

    private boolean lent(DataType type) {
        return held != null && held.get(0).getDataType() == type;
    }

    @Override
    NDArray multiply(NDArray x) {
        long rows = outFeatures();
        DataType type = x.getDataType();
        NDList parts = new NDList();
        for (int i = 0; i * rowsPerChunk < rows; i++) {
            long r = i * rowsPerChunk;
            NDArray w = chunk(i, r, Math.min(rows, r + rowsPerChunk), type);
            try {
                parts.add(product(x, w));
            } finally {
                release(w, type);
            }
        }
        if (parts.size() == 1) {
            return parts.get(0);
        }
        NDArray y = NDArrays.concat(parts, -1);
        parts.close();
        return y;
    }

    @Override
    public NDArray inputGradient(NDArray gradOutput) {
        long rows = outFeatures();
        DataType type = gradOutput.getDataType();
        NDArray sum = null;
        for (int i = 0; i * rowsPerChunk < rows; i++) {
            long r = i * rowsPerChunk;
            long end = Math.min(rows, r + rowsPerChunk);
            NDArray w = chunk(i, r, end, type);
            NDArray part;
            try (NDArray g = gradOutput.get("..., {}:{}", r, end)) {
                part = g.matMul(w);
            } finally {
                release(w, type);
            }
            if (sum == null) {
                sum = part;
            } else {
                sum.addi(part);
                part.close();
            }
        }
        return sum;
    }

    /** Closes a chunk {@link #chunk} widened for one product; a held one stays. */
    private void release(NDArray w, DataType type) {
        if (!lent(type)) {
            w.close();
        }
    }

    /** The whole matrix widened to {@code type} for the call (products never need it: they go by row chunks). */
    @Override
    public <R> R withWeight(DataType type, Function<NDArray, R> use) {
        try (NDArray w = widened(0, outFeatures(), type)) {
            return use.apply(w);
        }
    }

    /**
     * Code times row scale computed on the Java heap in float32, the bits {@link #withWeight} gives in float32, read
     * one row chunk of codes at a time.
     */
    @Override
    public float[] weightFloats() {
        int cols = Math.toIntExact(inFeatures());
        long rows = outFeatures();
        float[] rowScales = scales.toFloatArray();
        float[] w = new float[Math.toIntExact(rows * cols)];
        for (long r = 0; r < rows; r += rowsPerChunk) {
            ShortBuffer codes;
            try (NDArray part = half.get(new NDIndex("{}:{}", r, Math.min(rows, r + rowsPerChunk)))) {
                codes = part.toByteBuffer().order(ByteOrder.nativeOrder()).asShortBuffer();
            }
            for (int i = (int) (r * cols); codes.hasRemaining(); i++) {
                w[i] = HalfFloats.f16ToFloat(codes.get()) * rowScales[i / cols];
            }
        }
        return w;
    }

    @Override
    public NDArray lookup(NDArray ids) {
        NDArray rows;
        try (NDScope scope = new NDScope()) {
            NDArray index = ids.toType(DataType.INT64, false);
            rows = half.get(index).toType(DataType.FLOAT32, false).mul(scales.get(index));
            NDScope.unregister(rows);
        }
        rows.attach(ids.getManager());
        return rows;
    }

    @Override
    public Shape shape() {
        return half.getShape();
    }

    /** This matrix itself: x W^T over the same float16 rows. */
    @Override
    public LinearLayer asLinear() {
        return this;
    }

    @Override
    public long inFeatures() {
        return half.getShape().get(1);
    }

    @Override
    public long outFeatures() {
        return half.getShape().get(0);
    }

    /** The float16 codes and the float32 row scales. */
    @Override
    long weightBytes() {
        return half.size() * 2 + scales.size() * 4;
    }

    @Override
    void closeWeight() {
        if (held != null) {
            held.close();
            held = null;
        }
        half.close();
        scales.close();
    }
}
