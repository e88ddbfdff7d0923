package io.qlora4j.model.generation;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class SamplerTest {
    private static float[] logitsOf(double... probs) {
        float[] out = new float[probs.length];
        for (int i = 0; i < probs.length; i++) {
            out[i] = (float) Math.log(probs[i]);
        }
        return out;
    }

    private static double[] frequencies(Sampler sampler, float[] logits, int draws) {
        double[] freq = new double[logits.length];
        for (int i = 0; i < draws; i++) {
            freq[sampler.next(logits)] += 1.0 / draws;
        }
        return freq;
    }

    @Test
    void temperatureZeroTakesTheFirstLargestLogit() {
        Sampler greedy = new Sampler(0, 1, 1);
        assertEquals(2, greedy.next(new float[] {0.1f, 3, 5, 5, -1}));
    }

    @Test
    void topPKeepsTheSmallestSetReachingTheMass() {
        // p = [0.5, 0.3, 0.15, 0.05], top_p 0.7: {0.5, 0.3} reaches 0.8 >= 0.7, renormalized to 0.625 / 0.375
        double[] freq = frequencies(new Sampler(1, 0.7, 42), logitsOf(0.5, 0.3, 0.15, 0.05), 20000);
        assertEquals(0.625, freq[0], 0.015);
        assertEquals(0.375, freq[1], 0.015);
        assertEquals(0.0, freq[2] + freq[3]);
    }

    @Test
    void topPBelowTheLargestProbabilityStillKeepsOneToken() {
        double[] freq = frequencies(new Sampler(1, 0.1, 42), logitsOf(0.2, 0.5, 0.3), 200);
        assertEquals(1.0, freq[1], 1e-9);
    }

    @Test
    void temperatureSharpensTheDistribution() {
        // temperature 0.5 squares the probabilities: [0.6, 0.4] -> [0.36, 0.16] / 0.52 = [0.6923, 0.3077]
        double[] freq = frequencies(new Sampler(0.5, 1, 7), logitsOf(0.6, 0.4), 20000);
        assertEquals(0.36 / 0.52, freq[0], 0.015);
    }

    @Test
    void theSameSeedDrawsTheSameTokens() {
        float[] logits = logitsOf(0.25, 0.25, 0.25, 0.25);
        Sampler a = new Sampler(1, 1, 5);
        Sampler b = new Sampler(1, 1, 5);
        for (int i = 0; i < 50; i++) {
            assertEquals(a.next(logits), b.next(logits));
        }
    }
}
