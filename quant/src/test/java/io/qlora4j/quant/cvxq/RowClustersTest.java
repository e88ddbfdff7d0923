package io.qlora4j.quant.cvxq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class RowClustersTest {

    @Test
    void rowsSortedByScoreAreCutAsTensorSplitCuts() {
        // ascending score: rows 4, 1, 6, 0, 3, 2, 5; tensor_split(7, 3) -> sizes 3, 2, 2
        double[] score = {0.5, -1, 3, 2, -2, 4, 0};
        RowClusters c = RowClusters.byScore(score, 3);
        assertArrayEquals(new int[] {1, 0, 2, 1, 0, 2, 0}, c.clusterOfRow());
        assertArrayEquals(new int[][] {{1, 4, 6}, {0, 3}, {2, 5}}, c.members());
        assertEquals(3, c.slots());
    }

    @Test
    void referenceClusterCountIsRowsOverGroupSizeAtLeastOne() {
        assertEquals(16, RowClusters.count(4096, 256));
        assertEquals(1, RowClusters.count(128, 256));
        assertEquals(43, RowClusters.count(11008, 256));
    }

    @Test
    void consecutiveClustersAreTheInitialReshape() {
        assertArrayEquals(new int[] {0, 0, 1, 1, 2, 2}, RowClusters.consecutive(6, 3).clusterOfRow());
    }

    @Test
    void emptyClustersAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new RowClusters(new int[] {0, 0, 2}, 3));
    }
}
