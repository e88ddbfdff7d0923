package io.qlora4j.quant.cvxq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class LaplaceCodebookTest {

    /**
     * The {@code DEQUANT} table of the reference repository's {@code macros.h} (seannz/cvxq at be942d3), as printed
     * there: entry {@code 2^d + i} is the level of code {@code i} at depth {@code d}, depths 0 to 7.
     */
    private static final float[] MACROS_H_DEQUANT = {
        0.000000f, 0.000000f, -0.693147f, 0.693147f, -1.386294f, -0.287682f, 0.287682f, 1.386294f,
        -2.079442f, -0.980829f, -0.470004f, -0.133531f, 0.133531f, 0.470004f, 0.980829f, 2.079442f,
        -2.772589f, -1.673976f, -1.163151f, -0.826679f, -0.575364f, -0.374693f, -0.207639f, -0.064539f,
        0.064539f, 0.207639f, 0.374693f, 0.575364f, 0.826679f, 1.163151f, 1.673976f, 2.772589f,
        -3.465736f, -2.367124f, -1.856298f, -1.519826f, -1.268511f, -1.067841f, -0.900787f, -0.757686f,
        -0.632523f, -0.521297f, -0.421213f, -0.330242f, -0.246860f, -0.169899f, -0.098440f, -0.031749f,
        0.031749f, 0.098440f, 0.169899f, 0.246860f, 0.330242f, 0.421213f, 0.521297f, 0.632523f,
        0.757686f, 0.900787f, 1.067841f, 1.268511f, 1.519826f, 1.856298f, 2.367124f, 3.465736f,
        -4.158883f, -3.060271f, -2.549445f, -2.212973f, -1.961658f, -1.760988f, -1.593934f, -1.450833f,
        -1.325670f, -1.214444f, -1.114361f, -1.023389f, -0.940007f, -0.863046f, -0.791587f, -0.724896f,
        -0.662376f, -0.603535f, -0.547965f, -0.495321f, -0.445311f, -0.397683f, -0.352221f, -0.308735f,
        -0.267063f, -0.227057f, -0.188591f, -0.151550f, -0.115832f, -0.081346f, -0.048009f, -0.015748f,
        0.015748f, 0.048009f, 0.081346f, 0.115832f, 0.151550f, 0.188591f, 0.227057f, 0.267063f,
        0.308735f, 0.352221f, 0.397683f, 0.445311f, 0.495321f, 0.547965f, 0.603535f, 0.662376f,
        0.724896f, 0.791587f, 0.863046f, 0.940007f, 1.023389f, 1.114361f, 1.214444f, 1.325670f,
        1.450833f, 1.593934f, 1.760988f, 1.961658f, 2.212973f, 2.549445f, 3.060271f, 4.158883f,
        -4.852030f, -3.753418f, -3.242592f, -2.906120f, -2.654806f, -2.454135f, -2.287081f, -2.143980f,
        -2.018817f, -1.907591f, -1.807508f, -1.716536f, -1.633154f, -1.556193f, -1.484734f, -1.418043f,
        -1.355523f, -1.296682f, -1.241112f, -1.188469f, -1.138458f, -1.090830f, -1.045368f, -1.001883f,
        -0.960210f, -0.920205f, -0.881738f, -0.844697f, -0.808979f, -0.774493f, -0.741156f, -0.708896f,
        -0.677643f, -0.647338f, -0.617924f, -0.589350f, -0.561571f, -0.534542f, -0.508225f, -0.482582f,
        -0.457581f, -0.433190f, -0.409379f, -0.386122f, -0.363394f, -0.341171f, -0.319431f, -0.298153f,
        -0.277319f, -0.256910f, -0.236910f, -0.217301f, -0.198070f, -0.179201f, -0.160682f, -0.142500f,
        -0.124642f, -0.107098f, -0.089856f, -0.072907f, -0.056240f, -0.039846f, -0.023717f, -0.007843f,
        0.007843f, 0.023717f, 0.039846f, 0.056240f, 0.072907f, 0.089856f, 0.107098f, 0.124642f,
        0.142500f, 0.160682f, 0.179201f, 0.198070f, 0.217301f, 0.236910f, 0.256910f, 0.277319f,
        0.298153f, 0.319431f, 0.341171f, 0.363394f, 0.386122f, 0.409379f, 0.433190f, 0.457581f,
        0.482582f, 0.508225f, 0.534542f, 0.561571f, 0.589350f, 0.617924f, 0.647338f, 0.677643f,
        0.708896f, 0.741156f, 0.774493f, 0.808979f, 0.844697f, 0.881738f, 0.920205f, 0.960210f,
        1.001883f, 1.045368f, 1.090830f, 1.138458f, 1.188469f, 1.241112f, 1.296682f, 1.355523f,
        1.418043f, 1.484734f, 1.556193f, 1.633154f, 1.716536f, 1.807508f, 1.907591f, 2.018817f,
        2.143980f, 2.287081f, 2.454135f, 2.654806f, 2.906120f, 3.242592f, 3.753418f, 4.852030f,    };

    @Test
    void tableReproducesTheReferenceDecoderTableToItsSixDecimals() {
        float[] table = LaplaceCodebook.table();
        assertEquals(512, table.length);
        for (int e = 0; e < MACROS_H_DEQUANT.length; e++) {
            assertEquals(MACROS_H_DEQUANT[e], table[e], 1e-6, "entry " + e);
        }
    }

    @Test
    void depthEightExtendsTheTableWithTheSameFormula() {
        // depth 8, code 0: icdf(0.5 / 256) = log(2 * 0.5 / 256) = -log(256)
        assertEquals(-Math.log(256), LaplaceCodebook.level(8, 0), 1e-6);
        assertEquals(Math.log(256), LaplaceCodebook.level(8, 255), 1e-6);
        // code 127 sits just below the median: icdf(127.5 / 256) = log(2 * 127.5 / 256)
        assertEquals(Math.log(255.0 / 256), LaplaceCodebook.level(8, 127), 1e-7);
    }

    @Test
    void levelsIncreaseAndMirrorAboutZero() {
        for (int d = 1; d <= LaplaceCodebook.MAX_DEPTH; d++) {
            int n = 1 << d;
            for (int i = 0; i < n; i++) {
                assertEquals(-LaplaceCodebook.level(d, i), LaplaceCodebook.level(d, n - 1 - i), 0f);
                if (i > 0) {
                    assertTrue(LaplaceCodebook.level(d, i) > LaplaceCodebook.level(d, i - 1));
                }
            }
        }
        assertEquals(0f, LaplaceCodebook.level(0, 0));
    }

    @Test
    void codesOutsideTheDepthAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> LaplaceCodebook.level(3, 8));
        assertThrows(IllegalArgumentException.class, () -> LaplaceCodebook.level(9, 0));
    }
}
