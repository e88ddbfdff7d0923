package io.qlora4j.quant.cvxq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.quant.HalfFloats;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class PartitionQuantizerTest {

    /** Laplace(mu, b) samples by inverse transform. */
    static float[] laplace(Random random, int n, double mu, double b) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            double u = random.nextDouble() - 0.5;
            v[i] = (float) (mu - b * Math.signum(u) * Math.log(1 - 2 * Math.abs(u)));
        }
        return v;
    }

    private static double mse(float[] values, int depth, PartitionQuantizer q) {
        byte[] codes = new byte[values.length];
        PartitionQuantizer.Decoder d = q.quantize(values, values.length, depth, codes);
        double sum = 0;
        for (int i = 0; i < values.length; i++) {
            double e = d.decode(depth, codes[i] & 0xFF) - values[i];
            sum += e * e;
        }
        return sum / values.length;
    }

    @Test
    void depthZeroDecodesEveryWeightToTheLowerMedian() {
        float[] values = {0.5f, -1f, 3f, 0.25f, 2f, -0.75f}; // sorted: -1 -0.75 0.25 0.5 2 3; lower median 0.25
        byte[] codes = new byte[values.length];
        PartitionQuantizer.Decoder d = PartitionQuantizer.plain().quantize(values, values.length, 0, codes);
        for (int i = 0; i < values.length; i++) {
            assertEquals(0, codes[i]);
            assertEquals(0.25f, d.decode(0, codes[i]));
        }
    }

    @Test
    void plainQuantizerFollowsTheReferenceFormulaWrittenOutInFloat64() {
        Random random = new Random(3);
        float[] values = laplace(random, 301, 0.01, 0.02);
        for (int depth = 1; depth <= 8; depth++) {
            // the reference: offset = lower median, s = 1/2 log2 mean((w - offset)^2), b = 3/1.414213562 * 2^s
            float[] sorted = values.clone();
            java.util.Arrays.sort(sorted);
            float median = sorted[150];
            double ms = 0;
            for (float v : values) {
                ms += (v - (double) median) * (v - (double) median);
            }
            double b = 3 / 1.414213562 * Math.pow(2, 0.5 * Math.log(ms / values.length) / Math.log(2));
            // stored as float16, as qlora4j keeps them
            float loc = HalfFloats.f16ToFloat(HalfFloats.floatToF16(median));
            float scale = HalfFloats.f16ToFloat(HalfFloats.floatToF16((float) b));
            byte[] codes = new byte[values.length];
            PartitionQuantizer.Decoder d = PartitionQuantizer.plain().quantize(values, values.length, depth, codes);
            assertEquals(loc, d.locValue());
            assertEquals(scale, d.scaleValue());
            for (int i = 0; i < values.length; i++) {
                double z = ((double) values[i] - loc) / scale;
                double cdf = 0.5 - 0.5 * Math.signum(z) * Math.expm1(-Math.abs(z));
                int code = (int) Math.min(Math.floor(cdf * (1 << depth)), (1 << depth) - 1);
                assertEquals(code, codes[i] & 0xFF);
                double p = (code + 0.5) / (1 << depth) - 0.5; // icdf((code + 0.5) 2^-B; loc, b)
                double decoded = loc - scale * Math.signum(p) * Math.log1p(-2 * Math.abs(p));
                assertEquals(decoded, d.decode(depth, code), 1e-6 * scale);
            }
        }
    }

    @Test
    void depthBUsesAtMostTwoToTheBLevels() {
        float[] values = laplace(new Random(5), 5000, 0, 1);
        for (int depth = 0; depth <= 8; depth++) {
            byte[] codes = new byte[values.length];
            PartitionQuantizer.Decoder d = PartitionQuantizer.gridSearched().quantize(values, values.length, depth, codes);
            Set<Float> levels = new HashSet<>();
            for (byte c : codes) {
                assertTrue((c & 0xFF) < 1 << depth);
                levels.add(d.decode(depth, c & 0xFF));
            }
            assertTrue(levels.size() <= 1 << depth, depth + " bits gave " + levels.size() + " levels");
        }
    }

    @Test
    void errorFallsAboutSixDecibelsPerBit() {
        float[] values = laplace(new Random(11), 20_000, 0.003, 0.01);
        double previous = mse(values, 2, PartitionQuantizer.plain());
        double total = 0;
        for (int depth = 3; depth <= 8; depth++) {
            double e = mse(values, depth, PartitionQuantizer.plain());
            double gain = 10 * Math.log10(previous / e);
            assertTrue(gain > 4.5 && gain < 7.5, depth + " bits gained " + gain + " dB");
            total += gain;
            previous = e;
        }
        double perBit = total / 6;
        assertTrue(Math.abs(perBit - 6.02) < 0.5, "mean gain " + perBit + " dB per bit");
    }

    @Test
    void gridSearchIsNeverWorseThanTheCentredStep() {
        Random random = new Random(9);
        for (int trial = 0; trial < 20; trial++) {
            float[] values = laplace(random, 64 + trial, random.nextGaussian() * 0.01, 0.02);
            int depth = trial % 5;
            assertTrue(mse(values, depth, PartitionQuantizer.gridSearched())
                    <= mse(values, depth, PartitionQuantizer.plain()));
        }
    }

    @Test
    void constantPartitionDecodesExactly() {
        float[] values = {0.125f, 0.125f, 0.125f};
        byte[] codes = new byte[3];
        PartitionQuantizer.Decoder d = PartitionQuantizer.gridSearched().quantize(values, 3, 4, codes);
        assertEquals(0f, d.scaleValue());
        assertEquals(0.125f, d.decode(4, codes[0]));
    }

    @Test
    void log2VarianceIsAboutTheLowerMedian() {
        float[] values = {1f, 2f, 4f, 9f}; // lower median 2: squares 1, 0, 4, 49 -> mean 13.5
        assertEquals(Math.log(13.5) / Math.log(2), PartitionQuantizer.log2Variance(values, 4), 1e-12);
    }
}
