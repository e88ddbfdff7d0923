package io.qlora4j.quant.aqlm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.quant.QuantFormatException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

class AqlmTensorTest {

    /** 1x16 g2, a 2 x 4 weight: codes 65535, 3, 40000, 0 with hand-picked codebook rows. */
    static AqlmTensor handCase() {
        AqlmScheme scheme = new AqlmScheme(1, 16, 2, 1);
        float[] cb = new float[65536 * 2];
        set(cb, 65535, 0.5f, -1f);
        set(cb, 3, 2f, 0.25f);
        set(cb, 40000, -0.75f, 1.5f);
        set(cb, 0, 1f, 1f);
        return new AqlmTensor(scheme, 2, 4, new int[] {65535, 3, 40000, 0}, cb, new float[] {2f, 0.5f});
    }

    private static void set(float[] cb, int entry, float a, float b) {
        cb[entry * 2] = a;
        cb[entry * 2 + 1] = b;
    }

    @Test
    void decodeFollowsTheElementFormula() {
        assertArrayEquals(new float[] {1f, -2f, 4f, 0.5f, -0.375f, 0.75f, 0.5f, 0.5f}, handCase().decode());
    }

    @Test
    void outputGroupsAndSeveralCodebooksAddUp() {
        // 2x2 g2 og2: one group covers a 2 x 2 block; W[a, b] = s * (cb0[c0, a, b] + cb1[c1, a, b])
        AqlmScheme scheme = new AqlmScheme(2, 2, 2, 2);
        float[] cb = new float[2 * 4 * 4];
        for (int i = 0; i < cb.length; i++) {
            cb[i] = i;
        }
        // group (0, 0) codes (1, 3), group (0, 1) codes (2, 0); scale 0.5
        AqlmTensor t = new AqlmTensor(scheme, 2, 4, new int[] {1, 3, 2, 0}, cb, new float[] {0.5f});
        float[] w = t.decode();
        // cb0[1] = 4,5,6,7; cb1[3] = 28,29,30,31 -> block (32, 34 / 36, 38) * 0.5
        // cb0[2] = 8,9,10,11; cb1[0] = 16,17,18,19 -> block (24, 26 / 28, 30) * 0.5
        assertArrayEquals(new float[] {16, 17, 12, 13, 18, 19, 14, 15}, w);
    }

    @Test
    void int16CodesAboveHalfTheRangeAreStoredNegative() throws QuantFormatException {
        ByteBuffer stored = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        stored.putShort((short) -1).putShort((short) 3).putShort((short) -25536).putShort((short) 0).flip();
        assertArrayEquals(new int[] {65535, 3, 40000, 0}, AqlmCodes.unsigned(stored, 2, 4, 16, "codes"));
        byte[] packed = AqlmCodes.pack(new int[] {65535, 3, 40000, 0}, 16);
        assertArrayEquals(new byte[] {-1, -1, 3, 0, 0x40, (byte) 0x9C, 0, 0}, packed);
        // 8-bit codes: 200 is the int8 -56; 12-bit codes in int16 are offset the same way
        assertEquals(-56, AqlmCodes.stored(200, 8));
        assertEquals(-1096, AqlmCodes.stored(3000, 12));
        ByteBuffer twelve = ByteBuffer.allocate(2).order(ByteOrder.LITTLE_ENDIAN).putShort((short) -1096).flip();
        assertArrayEquals(new int[] {3000}, AqlmCodes.unsigned(twelve, 2, 1, 12, "codes"));
    }

    @Test
    void storedCodesOutsideTheCodebookAreRefusedByPositionAndValue() {
        ByteBuffer stored = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putShort((short) 7)
                .putShort((short) 300).flip();
        QuantFormatException e = assertThrows(QuantFormatException.class,
                () -> AqlmCodes.unsigned(stored, 2, 2, 8, "model.layers.0.mlp.up_proj.codes"));
        assertEquals("model.layers.0.mlp.up_proj.codes: code 300 at position 1 is out of range for 256-entry "
                + "codebooks (nbits_per_codebook 8: expected -128 to 255)", e.getMessage());
    }

    @Test
    void bitsPerParameterMatchesTheAqlmEstimate() {
        AqlmScheme s = new AqlmScheme(1, 16, 8, 1);
        assertEquals(2.504, s.bitsPerParameter(4096, 4096), 5e-4);
        assertEquals(2.190, s.bitsPerParameter(11008, 4096), 5e-4);
        assertEquals("1x16 g8", s.toString());
        assertEquals("2x8 g8", new AqlmScheme(2, 8, 8, 1).toString());
        // 2x8 g8 codes are 2 bits; the 2 x 256 x 8 fp16 codebooks add 65536 bits
        assertEquals(2 + 65536.0 / (4096 * 4096) + 16.0 / 4096, new AqlmScheme(2, 8, 8, 1).bitsPerParameter(4096, 4096),
                1e-12);
    }

    @Test
    void deviceDecodeEqualsHostDecodeBitForBit() {
        AqlmScheme[] schemes = {new AqlmScheme(1, 16, 8, 1), new AqlmScheme(2, 8, 8, 1), new AqlmScheme(1, 16, 16, 1),
            new AqlmScheme(1, 8, 8, 1), new AqlmScheme(3, 4, 4, 2), new AqlmScheme(1, 12, 4, 1)};
        try (NDManager manager = NDManager.newBaseManager()) {
            for (AqlmScheme s : schemes) {
                AqlmTensor t = random(s, 8, 32, 7);
                try (NdAqlmTensor nd = NdAqlmTensor.upload(t, manager); NDArray w = nd.dequantize(DataType.FLOAT32)) {
                    assertEquals(new Shape(8, 32), w.getShape(), s.toString());
                    assertArrayEquals(t.decode(), w.toFloatArray(), s.toString());
                }
            }
            AqlmTensor hand = handCase();
            try (NdAqlmTensor nd = NdAqlmTensor.upload(hand, manager); NDArray w = nd.dequantize(DataType.FLOAT16)) {
                assertEquals(DataType.FLOAT16, w.getDataType());
                assertArrayEquals(hand.decode(), w.toType(DataType.FLOAT32, false).toFloatArray());
            }
        }
    }

    @Test
    void recordRefusesArraysThatDisagreeWithTheScheme() {
        AqlmScheme s = new AqlmScheme(2, 8, 8, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new AqlmTensor(s, 4, 12, new int[0], new float[0], new float[0]));
        assertTrue(e.getMessage().contains("in_features 12 is not a multiple of in_group_size 8"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> new AqlmTensor(s, 4, 16, new int[16], new float[2 * 256 * 8], new float[3]));
        assertEquals("scales has 3 values, expected 4", e.getMessage());
    }

    /** A tensor with random codes, fp16-exact codebook values and scales. */
    static AqlmTensor random(AqlmScheme s, int out, int in, long seed) {
        Random rnd = new Random(seed);
        int groups = out / s.outGroupSize() * (in / s.inGroupSize());
        int[] codes = new int[groups * s.numCodebooks()];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = i % 5 == 0 ? s.codebookSize() - 1 : rnd.nextInt(s.codebookSize());
        }
        float[] cb = new float[s.numCodebooks() * s.codebookSize() * s.groupSize()];
        for (int i = 0; i < cb.length; i++) {
            cb[i] = (rnd.nextInt(2049) - 1024) / 1024f; // 11 significant bits: exact in fp16
        }
        float[] scales = new float[out / s.outGroupSize()];
        for (int i = 0; i < scales.length; i++) {
            scales[i] = (1 + rnd.nextInt(64)) / 256f;
        }
        return new AqlmTensor(s, out, in, codes, cb, scales);
    }
}
