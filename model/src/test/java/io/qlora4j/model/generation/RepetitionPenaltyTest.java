package io.qlora4j.model.generation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import org.junit.jupiter.api.Test;

class RepetitionPenaltyTest {
    @Test
    void aRowOfABatchIsPenalizedWhereItsSequenceHoldsTheId() {
        // two rows of three logits; row 1 holds ids 0 and 2: 4 / 1.25 = 3.2, -2 * 1.25 = -2.5, id 1 unchanged
        float[] batch = {9, 9, 9, 4, 1, -2};
        float[] row = new RepetitionPenalty(1.25).apply(batch, 3, new boolean[] {true, false, true});
        assertArrayEquals(new float[] {3.2f, 1, -2.5f}, row);
        assertArrayEquals(new float[] {9, 9, 9, 4, 1, -2}, batch, "the batch's logits stay as they are");
        assertArrayEquals(new float[] {4, 1, -2},
                RepetitionPenalty.NONE.apply(batch, 3, new boolean[] {true, true, true}));
        float[] single = {1, 2};
        assertSame(single, RepetitionPenalty.NONE.apply(single, 0, new boolean[2]));
    }

    @Test
    void theSeenMaskMarksOnlyTheIdsOfTheGivenRow() {
        // two prompts of three ids in one row-major array; the second holds ids 4, 0 and 4
        long[] prompts = {1, 2, 1, 4, 0, 4};
        assertArrayEquals(new boolean[] {true, false, false, false, true},
                RepetitionPenalty.seen(5, prompts, 3, 3));
        assertArrayEquals(new boolean[] {false, true, true, false, false},
                RepetitionPenalty.seen(5, prompts, 0, 3));
    }
}
