package io.qlora4j.quant;

import java.util.Arrays;

/**
 * bitsandbytes' double quantization of 4-bit block scales: subtract their mean, then code them
 * blockwise (256 per block) to 8 bits against the signed dynamic map, as its CUDA
 * {@code quantize_blockwise} does (float32 reciprocal of each nested absmax, {@code dQuantize}).
 */
final class DoubleQuantizer {

    /** Codes per nested block, fixed at 256 by bitsandbytes' {@code quantize_4bit}. */
    static final int NESTED_BLOCKSIZE = 256;

    private DoubleQuantizer() {}

    /**
     * Double-quantizes float32 block scales.
     *
     * <p>The offset is the mean summed in float64 and rounded once to float32. bitsandbytes takes
     * {@code absmax.mean()} in float32, whose reduction order depends on the device and kernel; on
     * 35 random arrays of 100 to 2.8M scales libtorch 2.7.1's CPU mean differed from this one in
     * 15 cases, always by 1 ulp. The codes then follow from whichever offset is used, and a
     * checkpoint stores it, so loading never recomputes it.
     */
    static DoubleQuantizedScales quantize(float[] absmax, int threads) {
        DynamicMap map = DynamicMap.signed();
        int n = absmax.length;
        float offset = mean(absmax);
        float[] centered = new float[n];
        for (int i = 0; i < n; i++) {
            centered[i] = absmax[i] - offset;
        }
        int nestedBlocks = (n + NESTED_BLOCKSIZE - 1) / NESTED_BLOCKSIZE;
        byte[] codes = new byte[n];
        float[] nested = new float[nestedBlocks];
        byte zero = (byte) map.encode(0f);
        BlockParallel.forEachRange(nestedBlocks, NESTED_BLOCKSIZE, threads, (from, to) -> {
            for (int b = from; b < to; b++) {
                int start = b * NESTED_BLOCKSIZE;
                int end = Math.min(start + NESTED_BLOCKSIZE, n);
                float amax = BlockwiseQuantizer.absmax(centered, start, end);
                nested[b] = amax;
                if (amax == 0f) {
                    Arrays.fill(codes, start, end, zero);
                    continue;
                }
                float r = 1.0f / amax;
                for (int i = start; i < end; i++) {
                    codes[i] = (byte) map.encode(centered[i] * r);
                }
            }
        });
        return new DoubleQuantizedScales(codes, nested, offset, NESTED_BLOCKSIZE, map.values());
    }

    /** The mean summed in float64, rounded to float32; 0 for no values. */
    static float mean(float[] values) {
        if (values.length == 0) {
            return 0f;
        }
        double sum = 0;
        for (float v : values) {
            sum += v;
        }
        return (float) (sum / values.length);
    }
}
