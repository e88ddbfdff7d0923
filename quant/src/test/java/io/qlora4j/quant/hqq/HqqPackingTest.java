package io.qlora4j.quant.hqq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** HQQ's bit packings, against bytes derived by hand from hqq/core/bitpack.py. */
class HqqPackingTest {

    @Test
    void fourBitPutsTheFirstHalfOfTheRowsInTheHighNibble() {
        byte[] codes = {1, 2, 3, 4, 5, 6, 7, 8};
        assertArrayEquals(new byte[] {0x15, 0x26, 0x37, 0x48}, HqqPacking.NIBBLE.pack(codes, 8, 1));
    }

    @Test
    void twoBitInterleavesQuartersOfTheRows() {
        byte[] codes = {3, 2, 1, 0, 0, 1, 2, 3};
        assertArrayEquals(new byte[] {(byte) 0xD2, (byte) 0x87}, HqqPacking.TWO_BIT.pack(codes, 8, 1));
    }

    @Test
    void oneBitPutsRowZeroInTheTopBit() {
        byte[] codes = {1, 0, 1, 1, 0, 0, 0, 1};
        assertArrayEquals(new byte[] {(byte) 0b10110001}, HqqPacking.ONE_BIT.pack(codes, 8, 1));
    }

    @Test
    void threeBitPacksTenRowsPerLittleEndianInt32() {
        byte[] codes = {0, 1, 2, 3, 4, 5, 6, 7};
        byte[] packed = HqqPacking.THREE_BIT.pack(codes, 8, 1);
        int expected = 0;
        for (int k = 0; k < 8; k++) {
            expected |= k << (27 - 3 * k);
        }
        assertEquals(4, packed.length);
        assertEquals(expected, (packed[0] & 0xFF) | (packed[1] & 0xFF) << 8 | (packed[2] & 0xFF) << 16
                | (packed[3] & 0xFF) << 24);
    }

    @Test
    void threeBitPadsSixtyFourRowsToSeventyWithAStepOfSeven() {
        // 64 rows -> 7 words per column; word p holds rows p, p+7, ..., p+63; rows 64..69 are zero
        byte[] codes = new byte[64];
        for (int r = 0; r < 64; r++) {
            codes[r] = (byte) (r % 8);
        }
        byte[] packed = HqqPacking.THREE_BIT.pack(codes, 64, 1);
        assertEquals(7 * 4, packed.length);
        for (int p = 0; p < 7; p++) {
            int word = (packed[4 * p] & 0xFF) | (packed[4 * p + 1] & 0xFF) << 8 | (packed[4 * p + 2] & 0xFF) << 16
                    | (packed[4 * p + 3] & 0xFF) << 24;
            int expected = 0;
            for (int m = 0; m < 10; m++) {
                int r = m * 7 + p;
                expected |= (r < 64 ? r % 8 : 0) << (27 - 3 * m);
            }
            assertEquals(expected, word, "word " + p);
        }
    }

    @Test
    void everyPackingRoundTripsAndHasHqqsSize() {
        Random rnd = new Random(9);
        int rows = 64;
        int cols = 37;
        int[][] expectations = {{8, 64}, {6, 64}, {5, 64}, {4, 32}, {3, 7 * 4}, {2, 16}, {1, 8}};
        for (int[] e : expectations) {
            int bits = e[0];
            HqqPacking p = HqqPacking.forBits(bits);
            byte[] codes = new byte[rows * cols];
            for (int i = 0; i < codes.length; i++) {
                codes[i] = (byte) rnd.nextInt(1 << bits);
            }
            byte[] packed = p.pack(codes, rows, cols);
            assertEquals((long) e[1] * cols, packed.length, bits + "-bit bytes");
            assertArrayEquals(codes, p.unpack(packed, rows, cols), bits + "-bit round trip");
        }
    }

    @Test
    void namesAreHqqs() {
        assertEquals("8bit_u8", HqqPacking.forBits(5).id());
        assertEquals("8bit_u8", HqqPacking.forBits(6).id());
        assertEquals("8bit_u8", HqqPacking.forBits(8).id());
        assertEquals("3bit_32", HqqPacking.forBits(3).id());
        assertEquals("torch.int32", HqqPacking.THREE_BIT.unpackViewDtype());
        assertEquals("torch.uint8", HqqPacking.NIBBLE.unpackViewDtype());
        assertEquals(HqqPacking.TWO_BIT, HqqPacking.fromId("2bit_u8"));
        assertThrows(IllegalArgumentException.class, () -> HqqPacking.fromId("2bit_u16"));
        assertThrows(IllegalArgumentException.class, () -> HqqPacking.forBits(7));
    }
}
