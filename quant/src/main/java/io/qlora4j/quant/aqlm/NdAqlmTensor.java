package io.qlora4j.quant.aqlm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.core.Embedding;
import io.qlora4j.quant.DeviceWeight;
import io.qlora4j.quant.ScopedResult;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * An {@link AqlmTensor} resident on a DJL device and decoded there per use, never kept dense: the codes stay in
 * their stored width (one byte up to 8 bits, else two: DJL's PyTorch engine aborts on int16 arrays, so a 16-bit
 * code is held as its low and high byte), the codebooks in float16 (their checkpoint values exactly) and the
 * scales in float32. {@link #decode} widens the codebooks, looks the codes up
 * codebook by codebook ({@code embedding}, which is {@code aqlm}'s {@code embedding_bag} sum done one codebook at
 * a time so the lookup never holds K copies of the weight), sums, scales and lays the groups out as
 * {@code [out, in]}; the result equals {@link AqlmTensor#decode} bit for bit.
 */
public final class NdAqlmTensor implements DeviceWeight {
    private final NDManager owner;
    private final NDManager arrays;
    private final AqlmScheme scheme;
    private final long outFeatures;
    private final long inFeatures;
    private final NDArray codes;
    private final NDArray codebooks;
    private final NDArray scales;
    /** The host tensor whose codes a trainable copy keeps; null for a frozen one. */
    private final AqlmTensor trained;

    private NdAqlmTensor(AqlmTensor t, NDManager owner, boolean trainable) {
        this.owner = owner;
        this.arrays = owner.newSubManager();
        this.scheme = t.scheme();
        this.outFeatures = t.outFeatures();
        this.inFeatures = t.inFeatures();
        this.codes = storedCodes(t, arrays);
        NDArray cb = arrays.create(t.codebooks(), new Shape(codebooksShape(scheme)));
        this.scales = arrays.create(t.scales());
        if (trainable) {
            this.codebooks = cb;
            codebooks.setRequiresGradient(true);
            scales.setRequiresGradient(true);
            this.trained = t;
        } else {
            this.codebooks = cb.toType(DataType.FLOAT16, false);
            cb.close();
            this.trained = null;
        }
    }

    /** Copies {@code t} to {@code manager}'s device, into a sub-manager freed by {@link #close()}. */
    public static NdAqlmTensor upload(AqlmTensor t, NDManager manager) {
        return new NdAqlmTensor(t, manager, false);
    }

    /**
     * A copy of {@code t} whose codebooks and scales are float32 arrays that require a gradient
     * ({@link #parameters}), so that {@link #dequantize} records a graph to them: the block fine-tune's form.
     */
    public static NdAqlmTensor trainable(AqlmTensor t, NDManager manager) {
        return new NdAqlmTensor(t, manager, true);
    }

    /** The trainable codebooks and scales; empty for a frozen tensor. */
    public List<NDArray> parameters() {
        return trained == null ? List.of() : List.of(codebooks, scales);
    }

    /** A trainable tensor's current state as a host tensor, codebooks and scales rounded to float16 as stored. */
    public AqlmTensor toTensor() {
        if (trained == null) {
            throw new IllegalStateException("only a trainable AQLM tensor is read back");
        }
        return new AqlmTensor(scheme, outFeatures, inFeatures, trained.codes(), float16(codebooks), float16(scales));
    }

    /** The float16 values of a float32 array, as floats. */
    static float[] float16(NDArray a) {
        try (NDArray v = a.stopGradient(); NDArray h = v.toType(DataType.FLOAT16, false);
                NDArray f = h.toType(DataType.FLOAT32, false)) {
            return f.toFloatArray();
        }
    }

    private static long[] codebooksShape(AqlmScheme s) {
        return new long[] {s.numCodebooks(), s.codebookSize(), s.groupSize()};
    }

    /** The codes as uint8 {@code [out/og, in/ig, K]}, or {@code [out/og, in/ig, K, 2]} (low, high byte). */
    private static NDArray storedCodes(AqlmTensor t, NDManager arrays) {
        int[] c = t.codes();
        boolean narrow = t.scheme().nbitsPerCodebook() <= 8;
        ByteBuffer buffer = ByteBuffer.allocateDirect(c.length * (narrow ? 1 : 2)).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : c) {
            if (narrow) {
                buffer.put((byte) v);
            } else {
                buffer.putShort((short) v);
            }
        }
        buffer.rewind();
        Shape shape = new Shape(t.codesShape());
        return arrays.create(buffer, narrow ? shape : shape.add(2), DataType.UINT8);
    }

    /**
     * The weight {@code [out, in]} in {@code type} (decoded in float32, then cast). The result belongs to the
     * manager given to {@link #upload} and to the innermost open {@link NDScope}; intermediates are freed.
     */
    @Override
    public NDArray dequantize(DataType type) {
        return ScopedResult.compute(owner, () -> {
            // a trainable copy's float32 codebooks are used as they are: toType would drop their graph
            NDArray table = trained != null ? codebooks : codebooks.toType(DataType.FLOAT32, false);
            NDArray w = decode(scheme, outFeatures, inFeatures, codeIndex(), table, scales);
            return type == DataType.FLOAT32 ? w : w.toType(type, false);
        });
    }

    /** The codes as int32 indices in {@code [0, 2^nbits)}, shape {@code [out/og, in/ig, K]}. */
    private NDArray codeIndex() {
        NDArray index = codes.toType(DataType.INT32, false);
        if (scheme.nbitsPerCodebook() <= 8) {
            return index;
        }
        return index.get("..., 0").add(index.get("..., 1").mul(256));
    }

    /**
     * {@code scales[o] * sum_k codebooks[k, codes[o, i, k]]} laid out as {@code [out, in]}, from int32
     * {@code index [out/og, in/ig, K]}, float {@code codebooks [K, 2^nbits, og*ig]} and {@code scales [out/og]}.
     * Differentiable in the codebooks and scales, which is how the quantizer's Adam and block fine-tune use it.
     */
    static NDArray decode(AqlmScheme scheme, long out, long in, NDArray index, NDArray codebooks, NDArray scales) {
        NDArray sum = null;
        for (int k = 0; k < scheme.numCodebooks(); k++) {
            NDArray rows = Embedding.embedding(index.get(":, :, " + k), codebooks.get(k), SparseFormat.DENSE)
                    .singletonOrThrow();
            sum = sum == null ? rows : sum.add(rows);
        }
        long outGroups = out / scheme.outGroupSize();
        NDArray scaled = sum.mul(scales.reshape(outGroups, 1, 1));
        if (scheme.outGroupSize() == 1) {
            return scaled.reshape(out, in);
        }
        return scaled.reshape(outGroups, in / scheme.inGroupSize(), scheme.outGroupSize(), scheme.inGroupSize())
                .transpose(0, 2, 1, 3).reshape(out, in);
    }

    /** The scheme. */
    public AqlmScheme scheme() {
        return scheme;
    }

    /** {@code {out, in}}. */
    @Override
    public long[] shape() {
        return new long[] {outFeatures, inFeatures};
    }

    /** Device bytes held: codes, codebooks and scales. */
    @Override
    public long bytes() {
        return DeviceWeight.bytesOf(codes, codebooks, scales);
    }

    /** Frees the device arrays; decoded weights already returned stay valid. */
    @Override
    public void close() {
        arrays.close();
    }
}
