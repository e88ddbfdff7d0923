package io.qlora4j.quant.aqlm;

import io.qlora4j.quant.QuantFormatException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * How AQLM stores unsigned codes in signed integers ({@code aqlm.utils.pack_int_data}): a code at or above
 * {@code 2^(nbits-1)} is stored minus {@code 2^nbits}, so a 16-bit code of 65535 is the int16 -1 and an 8-bit
 * code of 200 the int8 -56; reading takes the value modulo {@code 2^nbits} ({@code unpack_int_data}). A stored
 * value outside {@code [-2^(nbits-1), 2^nbits)} is not something the packer writes and is refused rather than
 * wrapped onto another code.
 */
public final class AqlmCodes {
    private AqlmCodes() {}

    /** The stored integer of {@code code} (in {@code [0, 2^nbits)}). */
    public static int stored(int code, int nbits) {
        return code >= 1 << (nbits - 1) ? code - (1 << nbits) : code;
    }

    /**
     * The unsigned codes of a little-endian buffer of {@code bytesPerValue}-byte signed integers (1, 2, 4 or 8:
     * int8, int16, int32, int64), {@code count} of them.
     *
     * @param what the tensor's name, for the message
     * @throws QuantFormatException naming the tensor, the position and the value when one is out of range
     */
    public static int[] unsigned(ByteBuffer data, int bytesPerValue, int count, int nbits, String what)
            throws QuantFormatException {
        ByteBuffer le = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        long size = 1L << nbits;
        int[] codes = new int[count];
        for (int i = 0; i < count; i++) {
            long v = switch (bytesPerValue) {
                case 1 -> le.get();
                case 2 -> le.getShort();
                case 4 -> le.getInt();
                case 8 -> le.getLong();
                default -> throw new IllegalArgumentException("codes of " + bytesPerValue + " bytes");
            };
            if (v < -(size / 2) || v >= size) {
                throw new QuantFormatException(what + ": code " + v + " at position " + i + " is out of range for "
                        + size + "-entry codebooks (nbits_per_codebook " + nbits + ": expected " + -(size / 2)
                        + " to " + (size - 1) + ")");
            }
            codes[i] = (int) Math.floorMod(v, size);
        }
        return codes;
    }

    /** The codes as {@code aqlm} writes them: little-endian int8 up to 8 bits, int16 above. */
    public static byte[] pack(int[] codes, int nbits) {
        int bytes = nbits <= 8 ? 1 : 2;
        ByteBuffer out = ByteBuffer.allocate(codes.length * bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int c : codes) {
            int s = stored(c, nbits);
            if (bytes == 1) {
                out.put((byte) s);
            } else {
                out.putShort((short) s);
            }
        }
        return out.array();
    }
}
