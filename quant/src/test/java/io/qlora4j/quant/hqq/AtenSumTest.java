package io.qlora4j.quant.hqq;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** ATen's float32 summation orders, on runs where each order rounds differently (2^24 + 1 ties to 2^24). */
class AtenSumTest {
    private static final float BIG = 0x1p24f;

    @Test
    void innerAddsLeftoverScalarsBeforeTheLanes() {
        // 9 floats: one vector (lanes x[0..7]) and one leftover x[8]; the sum starts from the leftover:
        // 1, +1 = 2, +2^24 = 2^24+2, +1 = 2^24+3 -> 2^24+4 (tie to even), further +1s tie back to 2^24+4.
        float[] x = {1, BIG, 1, 1, 1, 1, 1, 1, 1};
        assertEquals(BIG + 4, AtenSum.inner(x, 0, 9));
        float naive = 0;
        for (float v : x) {
            naive += v;
        }
        assertEquals(BIG, naive);
    }

    @Test
    void ilpSumsEveryFourthElementFirst() {
        // slots k = x[k] + x[4+k]: 2^24 (the 1 is lost), 2, 2, 2; then 2^24 + 2 + 2 + 2
        float[] x = {BIG, 1, 1, 1, 1, 1, 1, 1};
        assertEquals(BIG + 6, AtenSum.ilp(x, 0, 1, 8));
        assertEquals(BIG, AtenSum.inner(x, 0, 8));
    }

    @Test
    void ilpFollowsTheStride() {
        float[] x = new float[16];
        for (int i = 0; i < 8; i++) {
            x[2 * i + 1] = i == 0 ? BIG : 1;
        }
        assertEquals(BIG + 6, AtenSum.ilp(x, 1, 2, 8));
    }

    @Test
    void cascadeSumsChunksOfSixteenRowsFromZero() {
        // one slot over 32 rows: the first chunk (2^24 then fifteen 1s) stays 2^24, the second is 16
        AtenSum.Cascade c = new AtenSum.Cascade(1, 32);
        for (int r = 0; r < 32; r++) {
            c.first()[0] += r == 0 ? BIG : 1;
            c.rowDone();
        }
        assertEquals(BIG + 16, c.finish()[0]);
    }

    @Test
    void cascadeMovesUpALevelEveryChunkOfChunks() {
        // 512 rows of one slot: chunks of 16 ones are 16 each, 16 of them make a level-2 sum of 256;
        // the level-1 sums restart after each level-2 carry, so a big first value cannot swallow them.
        AtenSum.Cascade c = new AtenSum.Cascade(1, 512);
        for (int r = 0; r < 512; r++) {
            c.first()[0] += r == 0 ? BIG : 1;
            c.rowDone();
        }
        // first chunk: 2^24 (its 15 ones lost); the rest: 511 - 15 = 496 ones, added as multiples of 16
        assertEquals(BIG + 496, c.finish()[0]);
    }

    @Test
    void cascadeColumnsAreWholeBlocksOfThirtyTwoOrOfFour() {
        assertEquals(0, AtenSum.cascadeColumns(1));
        assertEquals(0, AtenSum.cascadeColumns(3));
        assertEquals(4, AtenSum.cascadeColumns(7));
        assertEquals(0, AtenSum.cascadeColumns(31));
        assertEquals(32, AtenSum.cascadeColumns(48));
        assertEquals(65536, AtenSum.cascadeColumns(65536));
    }

    @Test
    void ceilLog2MatchesAten() {
        assertEquals(1, AtenSum.ceilLog2(0));
        assertEquals(1, AtenSum.ceilLog2(2));
        assertEquals(2, AtenSum.ceilLog2(3));
        assertEquals(4, AtenSum.ceilLog2(16));
        assertEquals(5, AtenSum.ceilLog2(17));
    }
}
