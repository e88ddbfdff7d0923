package io.qlora4j.quant;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.Objects;

/**
 * Quantizes float32 tensors to 4-bit NF4/FP4 blocks byte for byte as bitsandbytes'
 * {@code quantize_4bit} CUDA kernel does, optionally double-quantizing the scales, and
 * dequantizes them back. Built once with {@link #builder()}, immutable, safe to share.
 *
 * <p>Per block: {@code absmax = max|x|} in float32, each element scaled by the float32 reciprocal
 * {@code x * (1 / absmax)}, coded by the type's decision constants with strict {@code >} (a value
 * exactly on one takes the code below it; FP4 compares magnitudes, so there the smaller
 * magnitude), two codes per byte with the first element in the high nibble. The last block may be
 * partial. An odd element count leaves one nibble, which holds the code of 0.0 as in bitsandbytes
 * (its kernels quantize a padding 0.0 there), so one NF4 element 0.5 packs to 0xF7. An all-zero
 * block stores the code of 0.0 in every nibble (NF4 0x77, FP4 0x00), as bitsandbytes' CPU path
 * does for NF4; its CUDA kernels compute 0 * (1/0) = NaN there and store 0x00. Both decode to
 * zero. Infinite and subnormal scales behave as in the CUDA kernel; NaN inputs are not supported.
 */
public final class BlockwiseQuantizer {

    private static final int[] BLOCKSIZES = {32, 64, 128, 256, 512, 1024, 2048, 4096};
    /**
     * Elements a thread reads from a {@link FloatSource} at once: enough to spread a read's fixed
     * cost (a file mapping), few enough that the 256 KiB buffer stays in cache and is never a G1
     * humongous object (those are half a region, 512 KiB at the least), which would grow the heap.
     */
    static final int CHUNK_ELEMENTS = 1 << 16;
    /** Values {@link #decodeSimd} writes per bulk transfer (whole blocks, at least one). */
    private static final int SIMD_CHUNK = 1024;
    /** The largest Java array length the VM reliably allows. */
    private static final int MAX_ARRAY = Integer.MAX_VALUE - 8;

    private final QuantType type;
    private final int blocksize;
    private final boolean doubleQuant;
    private final int threads;

    private BlockwiseQuantizer(Builder builder) {
        this.type = builder.type;
        this.blocksize = builder.blocksize;
        this.doubleQuant = builder.doubleQuant;
        this.threads = builder.threads;
    }

    /** A builder with QLoRA's defaults: NF4, blocksize 64, double quantization, all cores. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Quantizes {@code data} (row-major, {@code product(shape)} elements) into packed codes and
     * block scales.
     */
    public QuantizedTensor quantize(float[] data, long[] shape) {
        Objects.requireNonNull(data, "data");
        if (elementCount(shape) != data.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds "
                    + QuantizedTensor.numel(shape) + " elements but the data has " + data.length);
        }
        return quantizeBlocks(shape, (out, from, to) -> out.code(data, 0, from, to));
    }

    /**
     * Quantizes the {@code product(shape)} row-major elements of {@code source}, reading whole
     * blocks about 64K elements at a time per thread into a small buffer, so a weight is quantized
     * straight from its file without a float array of the whole weight. Gives exactly what {@link #quantize(float[],
     * long[])} gives for the same values. Reads are for disjoint ranges, from several threads at
     * once; the first failure is rethrown once every thread has stopped reading.
     *
     * @throws E what a read of {@code source} threw
     */
    public <E extends Exception> QuantizedTensor quantize(FloatSource<E> source, long[] shape) throws E {
        return quantize(source, shape, CHUNK_ELEMENTS);
    }

    /** {@link #quantize(FloatSource, long[])} reading about {@code chunkElements} elements at a time (whole blocks). */
    <E extends Exception> QuantizedTensor quantize(FloatSource<E> source, long[] shape, int chunkElements) throws E {
        Objects.requireNonNull(source, "source");
        int chunkBlocks = Math.max(1, chunkElements / blocksize);
        return quantizeBlocks(shape, (out, from, to) -> {
            float[] buffer = new float[Math.min(chunkBlocks, to - from) * blocksize];
            for (int b = from; b < to; b += chunkBlocks) {
                int end = Math.min(b + chunkBlocks, to);
                int first = b * blocksize;
                int count = (int) Math.min((long) end * blocksize, out.n) - first;
                source.read(first, buffer, 0, count);
                out.code(buffer, first, b, end);
            }
        });
    }

    /** Codes every block of a tensor of {@code shape} by {@code work} over parallel ranges, then its scales. */
    private <E extends Exception> QuantizedTensor quantizeBlocks(long[] shape, BlockWork<E> work) throws E {
        Output out = new Output(elementCount(shape));
        BlockParallel.forEachRange(out.absmax.length, blocksize, threads, (from, to) -> work.run(out, from, to));
        if (!doubleQuant) {
            return new QuantizedTensor(type, shape.clone(), blocksize, out.packed, out.absmax, null);
        }
        return new QuantizedTensor(type, shape.clone(), blocksize, out.packed, null,
                DoubleQuantizer.quantize(out.absmax, threads));
    }

    /** The element count of {@code shape}, which must fit one Java array. */
    private static int elementCount(long[] shape) {
        long numel = QuantizedTensor.numel(Objects.requireNonNull(shape, "shape"));
        if (numel > MAX_ARRAY) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds " + numel
                    + " elements, more than one Java array can hold");
        }
        return (int) numel;
    }

    /**
     * Decodes a quantized tensor to float32, row-major: {@code code[q_i] * scale[i / blocksize]},
     * one float32 multiply per element (the tensor's own type and blocksize apply).
     */
    public float[] dequantize(QuantizedTensor t) {
        long numel = t.numel();
        if (numel > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tensor of " + numel + " elements does not fit a Java array");
        }
        int n = (int) numel;
        float[] scales = t.scales();
        float[] out = new float[n];
        ByteBuffer codes = ByteBuffer.wrap(t.packed());
        FloatBuffer sink = FloatBuffer.wrap(out);
        float[] codebook = t.type().codebook();
        BlockParallel.forEachRange(scales.length, t.blocksize(), threads, (from, to) ->
                dequantizeBlocks(codes, b -> scales[b], codebook, t.blocksize(), n, sink, from, to));
        return out;
    }

    /** The float32 scale of one block. */
    interface BlockScale {
        /** The scale of block {@code block}. */
        float of(int block);
    }

    /**
     * Writes {@code code[q_i] * scale(i / blocksize)} to {@code out[i]} for every element {@code i < numel} of blocks
     * {@code [from, to)}, one float32 multiply per element; {@code packed} holds two codes per byte, the first element
     * in the high nibble, and {@code codebook} the 16 values of the codes ({@link QuantType#codebook}). Reads
     * and writes are absolute, so threads may fill disjoint block ranges of the same buffers. Whole blocks go through
     * {@link SimdNibbles} where {@link Simd#enabled} holds.
     */
    static void dequantizeBlocks(ByteBuffer packed, BlockScale scale, float[] codebook, int blocksize, int numel,
            FloatBuffer out, int from, int to) {
        int first = Simd.ENABLED && blocksize % SimdNibbles.STEP == 0
                ? decodeSimd(packed, scale, codebook, blocksize, numel, out, from, to) : from;
        decodeScalar(packed, scale, codebook, blocksize, numel, out, first, to);
    }

    /**
     * The whole blocks of {@code [from, to)} through {@link SimdNibbles}, a chunk of blocks per bulk transfer, their
     * scales read here so that the kernel sees arrays only; returns the first block left (a partial last one).
     */
    static int decodeSimd(ByteBuffer packed, BlockScale scale, float[] codebook, int blocksize, int numel,
            FloatBuffer out, int from, int to) {
        int perChunk = Math.max(1, SIMD_CHUNK / blocksize);
        byte[] codes = new byte[perChunk * blocksize / 2 + SimdNibbles.CODES_SLACK];
        float[] scales = new float[perChunk];
        float[] tables = new float[perChunk * SimdNibbles.STEP];
        float[] values = new float[perChunk * blocksize];
        int whole = Math.min(to, numel / blocksize);
        int b = from;
        while (b < whole) {
            int blocks = Math.min(perChunk, whole - b);
            packed.get(b * blocksize / 2, codes, 0, blocks * blocksize / 2);
            for (int k = 0; k < blocks; k++) {
                scales[k] = scale.of(b + k);
            }
            SimdNibbles.scaleCodebook(codebook, scales, blocks, tables);
            SimdNibbles.decode(codes, tables, blocks, blocksize, true, values);
            out.put(b * blocksize, values, 0, blocks * blocksize);
            b += blocks;
        }
        return b;
    }

    /** {@link #dequantizeBlocks} one element at a time: every block where SIMD lanes are not used, and partial ones. */
    static void decodeScalar(ByteBuffer packed, BlockScale scale, float[] codebook, int blocksize, int numel,
            FloatBuffer out, int from, int to) {
        // one block at a time through small arrays: a buffer's element accesses cost a bounds check each, a bulk
        // transfer one check per block
        // and the block's 16 values scaled once, then two lookups per byte: the same float32 multiply per value
        byte[] codes = new byte[(blocksize + 1) / 2];
        float[] values = new float[blocksize];
        float[] scaled = new float[16];
        for (int b = from; b < to; b++) {
            int start = b * blocksize;
            int count = (int) Math.min(blocksize, (long) numel - start);
            packed.get(start >> 1, codes, 0, (count + 1) / 2);
            float s = scale.of(b);
            for (int c = 0; c < scaled.length; c++) {
                scaled[c] = codebook[c] * s;
            }
            for (int j = 0; j < count / 2; j++) {
                int v = codes[j] & 0xFF;
                values[2 * j] = scaled[v >>> 4];
                values[2 * j + 1] = scaled[v & 0xF];
            }
            if (count % 2 == 1) {
                values[count - 1] = scaled[(codes[count / 2] & 0xFF) >>> 4];
            }
            out.put(start, values, 0, count);
        }
    }

    /**
     * {@code max |x|} over {@code [from, to)}, exact in float32: the sign-cleared bits of non-NaN
     * floats order as their magnitudes, and integer max in four independent lanes runs faster
     * than a chain of {@code Math.max(float)}.
     */
    static float absmax(float[] x, int from, int to) {
        int m0 = 0;
        int m1 = 0;
        int m2 = 0;
        int m3 = 0;
        int i = from;
        for (; i + 3 < to; i += 4) {
            m0 = Math.max(m0, Float.floatToRawIntBits(x[i]) & 0x7FFFFFFF);
            m1 = Math.max(m1, Float.floatToRawIntBits(x[i + 1]) & 0x7FFFFFFF);
            m2 = Math.max(m2, Float.floatToRawIntBits(x[i + 2]) & 0x7FFFFFFF);
            m3 = Math.max(m3, Float.floatToRawIntBits(x[i + 3]) & 0x7FFFFFFF);
        }
        for (; i < to; i++) {
            m0 = Math.max(m0, Float.floatToRawIntBits(x[i]) & 0x7FFFFFFF);
        }
        return Float.intBitsToFloat(Math.max(Math.max(m0, m1), Math.max(m2, m3)));
    }

    /** Rejects a blocksize bitsandbytes does not support, naming the allowed ones. */
    static void checkBlocksize(int blocksize) {
        if (Arrays.binarySearch(BLOCKSIZES, blocksize) < 0) {
            throw new IllegalArgumentException(
                    "blocksize " + blocksize + " is not supported; expected one of " + Arrays.toString(BLOCKSIZES));
        }
    }

    @Override
    public String toString() {
        return "BlockwiseQuantizer[" + type + ", blocksize=" + blocksize
                + (doubleQuant ? ", double-quantized" : "") + ", threads=" + threads + "]";
    }

    /** Codes blocks {@code [from, to)} into {@code out}; reads whatever values it codes. */
    @FunctionalInterface
    private interface BlockWork<E extends Exception> {
        void run(Output out, int from, int to) throws E;
    }

    /** The codes and scales of one tensor being quantized; ranges of blocks are coded into it in parallel. */
    private final class Output {
        final int n;
        final byte[] packed;
        final float[] absmax;

        Output(int n) {
            this.n = n;
            this.packed = new byte[(int) (((long) n + 1) / 2)];
            this.absmax = new float[(int) (((long) n + blocksize - 1) / blocksize)];
        }

        /**
         * Quantizes blocks {@code [from, to)}, whose elements {@code x} holds from index 0 on as
         * the tensor's elements from {@code xStart} on: absmax, reciprocal, codes, packing.
         */
        void code(float[] x, int xStart, int from, int to) {
            NibbleLookup lookup = type.lookup();
            int zero = type.zeroCode();
            for (int b = from; b < to; b++) {
                int start = b * blocksize;
                int end = (int) Math.min((long) start + blocksize, n);
                float amax = absmax(x, start - xStart, end - xStart);
                absmax[b] = amax;
                int p = start >> 1;
                if (amax == 0f) {
                    Arrays.fill(packed, p, p + (end - start + 1) / 2, (byte) (zero << 4 | zero));
                    continue;
                }
                lookup.pack(x, start - xStart, end - xStart, 1.0f / amax, packed, p);
            }
        }
    }

    /** Settings for a {@link BlockwiseQuantizer}; every setting is optional. */
    public static final class Builder {
        private QuantType type = QuantType.NF4;
        private int blocksize = 64;
        private boolean doubleQuant = true;
        private int threads = Runtime.getRuntime().availableProcessors();

        private Builder() {}

        /** The 4-bit type, NF4 by default. */
        public Builder optType(QuantType type) {
            this.type = Objects.requireNonNull(type, "type");
            return this;
        }

        /** Elements per block: 32, 64 (default), 128, 256, 512, 1024, 2048 or 4096. */
        public Builder optBlocksize(int blocksize) {
            checkBlocksize(blocksize);
            this.blocksize = blocksize;
            return this;
        }

        /** Whether to double-quantize the block scales (8-bit codes, 256-blocks); true by default. */
        public Builder optDoubleQuant(boolean doubleQuant) {
            this.doubleQuant = doubleQuant;
            return this;
        }

        /** Threads to split the blocks over; all available processors by default. */
        public Builder optThreads(int threads) {
            if (threads < 1) {
                throw new IllegalArgumentException("threads must be at least 1, got " + threads);
            }
            this.threads = threads;
            return this;
        }

        /** The immutable quantizer. */
        public BlockwiseQuantizer build() {
            return new BlockwiseQuantizer(this);
        }
    }
}
