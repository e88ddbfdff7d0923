package io.qlora4j.quant.cvxq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.qlora4j.quant.HalfFloats;
import java.util.Random;
import org.junit.jupiter.api.Test;

class CvxqTensorTest {

    private static short h(float v) {
        return HalfFloats.floatToF16(v);
    }

    /**
     * Five rows in two clusters (rows 1, 2, 4 and rows 0, 3: three slots), two columns; partitions p = c * 2 + j with
     * depths {2, 0, 1, 2}, so the plane order is p0, p3, p2, p1. Codes: p0 (rows 1, 2, 4) 3, 0, 2; p3 (rows 0, 3) 1, 2;
     * p2 (rows 0, 3) 1, 0. Plane 0 holds bit 0 of p0, p3, p2 (9 positions: 1 0 0 | 1 0 0 | 1 0 0 -> 0x49, 0x00),
     * plane 1 bit 1 of p0, p3 (6 positions: 1 0 1 | 0 1 0 -> 0x15).
     */
    static CvxqTensor handBuilt() {
        RowClusters clusters = new RowClusters(new int[] {1, 0, 0, 1, 0}, 2);
        byte[] depths = {2, 0, 1, 2};
        short[] locs = {h(0.5f), h(-1f), h(0f), h(2f)};
        short[] scales = {h(0.25f), h(0f), h(1f), h(0.5f)};
        byte[] codes = {0x49, 0x00, 0x15};
        return new CvxqTensor(5, 2, clusters, depths, locs, scales, codes);
    }

    @Test
    void handBuiltPlanesDecodeAsTheFormatDocumentSays() {
        float l20 = (float) Math.log(0.25);
        float l21 = (float) Math.log(0.75);
        float l10 = (float) Math.log(0.5);
        float[] expected = {
            0f + 1f * -l10, 2f + 0.5f * l21, // row 0: p2 code 1, p3 code 1
            0.5f + 0.25f * -l20, -1f, // row 1: p0 code 3, p1
            0.5f + 0.25f * l20, -1f, // row 2: p0 code 0
            0f + 1f * l10, 2f + 0.5f * -l21, // row 3: p2 code 0, p3 code 2
            0.5f + 0.25f * -l21, -1f, // row 4: p0 code 2
        };
        assertArrayEquals(expected, handBuilt().dequantize(), 1e-6f);
    }

    @Test
    void quantizedTensorDecodesAsItsPartitionsDo() {
        Random random = new Random(1);
        int rows = 23;
        int columns = 7;
        float[] w = PartitionQuantizerTest.laplace(random, rows * columns, 0, 0.05);
        double[] score = random.doubles(rows).toArray();
        RowClusters clusters = RowClusters.byScore(score, 3); // sizes 8, 8, 7
        byte[] depths = new byte[3 * columns];
        for (int p = 0; p < depths.length; p++) {
            depths[p] = (byte) random.nextInt(9);
        }
        CvxqTensor t = CvxqTensor.quantize(w, rows, columns, clusters, depths, PartitionQuantizer.gridSearched());
        float[] decoded = t.dequantize();
        int[][] members = clusters.members();
        for (int c = 0; c < 3; c++) {
            for (int j = 0; j < columns; j++) {
                int[] rowsOf = members[c];
                float[] values = new float[rowsOf.length];
                for (int s = 0; s < rowsOf.length; s++) {
                    values[s] = w[rowsOf[s] * columns + j];
                }
                byte[] codes = new byte[rowsOf.length];
                int depth = depths[c * columns + j];
                PartitionQuantizer.Decoder d = PartitionQuantizer.gridSearched().quantize(values, values.length, depth, codes);
                for (int s = 0; s < rowsOf.length; s++) {
                    assertEquals(d.decode(depth, codes[s] & 0xFF), decoded[rowsOf[s] * columns + j]);
                }
            }
        }
    }

    @Test
    void bytesCountPlanesAndSideInformation() {
        CvxqTensor t = handBuilt();
        // planes 2 + 1 bytes; 4 partitions x (1 + 2 + 2) bytes; 5 rows x 1 byte of cluster id
        assertEquals(3 + 20 + 5, t.bytes());
        assertEquals(8.0 * 28 / 10, t.bitsPerParameter(), 1e-12);
        // more than 256 clusters: two bytes per row id
        assertEquals(5L * 257 * 300 + 2 * 4096, CvxqTensor.sideBytes(4096, 300, 257));
    }

    @Test
    void planesOfTheWrongLengthAreRefused() {
        CvxqTensor t = handBuilt();
        assertThrows(IllegalArgumentException.class, () -> new CvxqTensor(5, 2, t.clusters(), t.depths(), t.locs(),
                t.scales(), new byte[] {1, 2}));
    }
}
