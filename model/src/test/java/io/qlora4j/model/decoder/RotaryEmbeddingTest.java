package io.qlora4j.model.decoder;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import io.qlora4j.model.llama.LlamaFamily;
import org.junit.jupiter.api.Test;

/** Inverse frequencies for head_dim 4, theta 10000 (unscaled: 1 and 0.01), derived by hand per scaling rule. */
class RotaryEmbeddingTest {
    private static DecoderConfig.Builder config() {
        return LlamaFamily.builder(8, 16, 1, 2, 10).optMaxPositionEmbeddings(8);
    }

    @Test
    void defaultFrequenciesAreThetaToTheMinusTwoIOverHeadDim() {
        assertArrayEquals(new double[] {1, 0.01}, new RotaryEmbedding(config().build()).inverseFrequencies(5), 1e-15);
    }

    @Test
    void linearScalingDividesEveryFrequencyByTheFactor() {
        RotaryEmbedding rope = new RotaryEmbedding(config().optRopeScaling(RopeScaling.linear(4)).build());
        assertArrayEquals(new double[] {0.25, 0.0025}, rope.inverseFrequencies(5), 1e-15);
    }

    @Test
    void dynamicScalingRaisesThetaOnlyBeyondMaxPositionEmbeddings() {
        RotaryEmbedding rope = new RotaryEmbedding(config().optRopeScaling(RopeScaling.dynamic(2)).build());
        assertArrayEquals(new double[] {1, 0.01}, rope.inverseFrequencies(8), 1e-15);
        // length 16: theta * (2 * 16 / 8 - 1)^(4 / 2) = 10000 * 9 = 90000, so the second frequency is 1/300
        assertArrayEquals(new double[] {1, 1.0 / 300}, rope.inverseFrequencies(16), 1e-15);
    }

    @Test
    void llama3KeepsShortWavelengthsAndBlendsMediumOnes() {
        // boundaries 1000/4 = 250 and 1000/1 = 1000: wavelength 6.28 is kept, 628.3 is blended with
        // smooth = (1000 / 628.3185 - 1) / 3 = 0.19718314, f = (1 - smooth) * 0.01 / 8 + smooth * 0.01
        RotaryEmbedding rope = new RotaryEmbedding(config().optRopeScaling(RopeScaling.llama3(8, 1, 4, 1000)).build());
        assertArrayEquals(new double[] {1, 0.002975352506846947}, rope.inverseFrequencies(5), 1e-15);
        // original 100: boundaries 25 and 100, wavelength 628.3 is divided by the factor
        RotaryEmbedding low = new RotaryEmbedding(config().optRopeScaling(RopeScaling.llama3(8, 1, 4, 100)).build());
        assertArrayEquals(new double[] {1, 0.00125}, low.inverseFrequencies(5), 1e-15);
    }
}
