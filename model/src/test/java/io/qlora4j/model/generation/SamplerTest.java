package io.qlora4j.model.generation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class SamplerTest {
    private static float[] logitsOf(double... probs) {
        float[] out = new float[probs.length];
        for (int i = 0; i < probs.length; i++) {
            out[i] = (float) Math.log(probs[i]);
        }
        return out;
    }

    private static Sampler sampler(double temperature, double topP, int topK, long seed) {
        return new Sampler(new Sampler.Settings(temperature, topP, topK, RepetitionPenalty.NONE), seed);
    }

    private static double[] frequencies(Sampler sampler, float[] logits, int draws) {
        double[] freq = new double[logits.length];
        boolean[] seen = new boolean[logits.length];
        for (int i = 0; i < draws; i++) {
            freq[sampler.next(logits, seen)] += 1.0 / draws;
        }
        return freq;
    }

    @Test
    void temperatureZeroTakesTheFirstLargestLogit() {
        Sampler greedy = sampler(0, 1, 0, 1);
        assertEquals(2, greedy.next(new float[] {0.1f, 3, 5, 5, -1}, new boolean[5]));
    }

    @Test
    void topPKeepsTheSmallestSetReachingTheMass() {
        // p = [0.5, 0.3, 0.15, 0.05], top_p 0.7: {0.5, 0.3} reaches 0.8 >= 0.7, renormalized to 0.625 / 0.375
        double[] freq = frequencies(sampler(1, 0.7, 0, 42), logitsOf(0.5, 0.3, 0.15, 0.05), 20000);
        assertEquals(0.625, freq[0], 0.015);
        assertEquals(0.375, freq[1], 0.015);
        assertEquals(0.0, freq[2] + freq[3]);
    }

    @Test
    void topPBelowTheLargestProbabilityStillKeepsOneToken() {
        double[] freq = frequencies(sampler(1, 0.1, 0, 42), logitsOf(0.2, 0.5, 0.3), 200);
        assertEquals(1.0, freq[1], 1e-9);
    }

    @Test
    void topKKeepsTheKLargestThenTopPWorksOnTheirRenormalizedMass() {
        // p = [0.4, 0.1, 0.3, 0.2], top_k 2 keeps {0.4, 0.3} -> [4/7, 3/7]; top_p 0.5 then stops at 4/7 >= 0.5
        float[] logits = logitsOf(0.4, 0.1, 0.3, 0.2);
        double[] freq = frequencies(sampler(1, 1, 2, 42), logits, 20000);
        assertEquals(4.0 / 7, freq[0], 0.015);
        assertEquals(3.0 / 7, freq[2], 0.015);
        assertEquals(0.0, freq[1] + freq[3]);
        assertEquals(1.0, frequencies(sampler(1, 0.5, 2, 42), logits, 200)[0], 1e-9);
        // without top_k the same top_p takes {0.4, 0.3}: 0.4 < 0.5 before the second
        assertEquals(0.0, frequencies(sampler(1, 0.5, 0, 42), logits, 2000)[1]);
    }

    @Test
    void topKKeepsTiesWithTheKthLogit() {
        // TopKLogitsWarper removes only logits below the k-th largest, so a tie at the k-th place survives
        double[] freq = frequencies(sampler(1, 1, 1, 3), new float[] {2, 2, 1}, 4000);
        assertEquals(0.5, freq[0], 0.04);
        assertEquals(0.5, freq[1], 0.04);
        assertEquals(0.0, freq[2]);
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfSeenIds() {
        // penalty 2 on ids 0 and 1: 3 -> 1.5 and -1 -> -2; id 2 (2.0, unseen) is now the largest, in greedy decoding
        Sampler greedy = new Sampler(new Sampler.Settings(0, 1, 0, new RepetitionPenalty(2.0)), 1);
        float[] logits = {3, -1, 2, -1.5f};
        assertEquals(2, greedy.next(logits, new boolean[] {true, true, false, false}));
        assertEquals(0, greedy.next(logits, new boolean[4]));
        assertArrayEquals(new float[] {3, -1, 2, -1.5f}, logits, "the caller's logits stay as they are");
        // ids 1 and 3 seen: -1 -> -2 and -1.5 -> -3 fall below the unseen id 0's -1.8 (unpenalized, id 1 wins)
        assertEquals(0, greedy.next(new float[] {-1.8f, -1, -3, -1.5f}, new boolean[] {false, true, false, true}));
    }

    @Test
    void settingsOutsideTheirRangesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new Sampler.Settings(1, 0, 0, RepetitionPenalty.NONE));
        assertThrows(IllegalArgumentException.class, () -> new Sampler.Settings(1, 1, -1, RepetitionPenalty.NONE));
        assertThrows(IllegalArgumentException.class, () -> new Sampler.Settings(-1, 1, 0, RepetitionPenalty.NONE));
        assertThrows(IllegalArgumentException.class, () -> new RepetitionPenalty(0));
    }

    @Test
    void temperatureSharpensTheDistribution() {
        // temperature 0.5 squares the probabilities: [0.6, 0.4] -> [0.36, 0.16] / 0.52 = [0.6923, 0.3077]
        double[] freq = frequencies(sampler(0.5, 1, 0, 7), logitsOf(0.6, 0.4), 20000);
        assertEquals(0.36 / 0.52, freq[0], 0.015);
    }

    @Test
    void theSameSeedDrawsTheSameTokens() {
        float[] logits = logitsOf(0.25, 0.25, 0.25, 0.25);
        Sampler a = sampler(1, 1, 0, 5);
        Sampler b = sampler(1, 1, 0, 5);
        for (int i = 0; i < 50; i++) {
            assertEquals(a.next(logits, new boolean[4]), b.next(logits, new boolean[4]));
        }
    }
}
