package io.qlora4j.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class QuantTypeTest {

    /** Float32 bits of the NF4 table in FORMATS.md §1 (bitsandbytes' decimal literals, rounded to float32). */
    private static final int[] NF4_BITS = {
        0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0, 0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
        0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a, 0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000,
    };

    /** FP4 codes 0..7 = {0, 0.0625, 8, 12, 4, 6, 2, 3} / 12 in float32; 8..15 their negatives, 8 = +0.0. */
    private static final int[] FP4_BITS = {
        0x00000000, 0x3baaaaab, 0x3f2aaaab, 0x3f800000, 0x3eaaaaab, 0x3f000000, 0x3e2aaaab, 0x3e800000,
        0x00000000, 0xbbaaaaab, 0xbf2aaaab, 0xbf800000, 0xbeaaaaab, 0xbf000000, 0xbe2aaaab, 0xbe800000,
    };

    @Test
    void nf4CodebookIsTheFormatsTable() {
        float[] cb = QuantType.NF4.codebook();
        assertEquals(16, cb.length);
        for (int i = 0; i < 16; i++) {
            assertEquals(NF4_BITS[i], Float.floatToRawIntBits(cb[i]), "NF4 code " + i);
        }
        assertEquals(0.07958029955625534, cb[8], 1e-8);
        assertEquals(-0.6961928009986877, cb[1], 1e-8);
    }

    @Test
    void fp4CodebookIsTheFormatsTable() {
        float[] cb = QuantType.FP4.codebook();
        for (int i = 0; i < 16; i++) {
            assertEquals(FP4_BITS[i], Float.floatToRawIntBits(cb[i]), "FP4 code " + i);
        }
        double[] formats = {0, 0.005208333, 0.6666667, 1.0, 0.3333333, 0.5, 0.1666667, 0.25};
        for (int i = 0; i < 8; i++) {
            assertEquals(formats[i], cb[i], 1e-7);
            assertEquals(-formats[i], cb[i + 8], 1e-7);
        }
    }

    @Test
    void codebookReturnsACopy() {
        float[] a = QuantType.NF4.codebook();
        a[0] = 42f;
        assertNotSame(a, QuantType.NF4.codebook());
        assertEquals(-1f, QuantType.NF4.codebook()[0]);
    }

    @Test
    void byteTableHoldsHighNibbleFirst() {
        float[] t = QuantType.NF4.byteTable();
        // byte 0xF7: high nibble 15 -> 1.0, low nibble 7 -> 0.0
        assertEquals(1.0f, t[2 * 0xF7]);
        assertEquals(0.0f, t[2 * 0xF7 + 1]);
        assertEquals(-1.0f, t[2 * 0x0F]);
        assertEquals(1.0f, t[2 * 0x0F + 1]);
    }

    @Test
    void jsonNamesAndParsingAreCaseInsensitive() {
        assertEquals("nf4", QuantType.NF4.jsonName());
        assertEquals("fp4", QuantType.FP4.jsonName());
        assertEquals(QuantType.NF4, QuantType.fromName("NF4"));
        assertEquals(QuantType.FP4, QuantType.fromName("fp4"));
        assertEquals(QuantType.FP4, QuantType.fromName("Fp4"));
    }

    @Test
    void unknownNameIsRejectedNamingValueAndAllowed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> QuantType.fromName("int4"));
        assertTrue(e.getMessage().contains("'int4'"), e.getMessage());
        assertTrue(e.getMessage().contains("nf4, fp4"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> QuantType.fromName(null));
    }
}
