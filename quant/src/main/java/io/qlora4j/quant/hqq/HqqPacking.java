package io.qlora4j.quant.hqq;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Locale;

/**
 * HQQ's bit packings ({@code hqq/core/bitpack.py}), which pack the codes of the grouped matrix {@code [rows, cols]}
 * along its rows: the packed word at row {@code p} holds the codes of rows {@code p, p + step, p + 2 step, ...}
 * ({@code step = rows / codes per word}), the first in the highest bits. 8, 6 and 5 bits take a byte each; 4 bits
 * two per byte; 2 bits four; 1 bit eight; 3 bits ten per int32 (bits 29..0, rows zero-padded to a multiple of 10),
 * stored little-endian.
 */
public enum HqqPacking {
    /** One code per byte (8, 6 and 5 bits). */
    BYTE("8bit_u8", 8, 1),
    /** Two 4-bit codes per byte: rows {@code p} (high nibble) and {@code p + rows/2}. */
    NIBBLE("4bit_u8", 4, 2),
    /** Ten 3-bit codes per int32, shifts 27, 24, ..., 0. */
    THREE_BIT("3bit_32", 3, 10),
    /** Four 2-bit codes per byte, shifts 6, 4, 2, 0. */
    TWO_BIT("2bit_u8", 2, 4),
    /** Eight 1-bit codes per byte, shifts 7 to 0. */
    ONE_BIT("1bit_u8", 1, 8);

    private final String id;
    private final int fieldBits;
    private final int perWord;

    HqqPacking(String id, int fieldBits, int perWord) {
        this.id = id;
        this.fieldBits = fieldBits;
        this.perWord = perWord;
    }

    /** The packing HQQ uses for {@code nbits}-bit codes. */
    public static HqqPacking forBits(int nbits) {
        return switch (nbits) {
            case 8, 6, 5 -> BYTE;
            case 4 -> NIBBLE;
            case 3 -> THREE_BIT;
            case 2 -> TWO_BIT;
            case 1 -> ONE_BIT;
            default -> throw new IllegalArgumentException("HQQ has no " + nbits + "-bit packing; expected 1, 2, 3, 4, 5, 6 or 8");
        };
    }

    /** The name HQQ records in {@code meta["packing"]}, e.g. {@code 4bit_u8}. */
    public String id() {
        return id;
    }

    /** The packing of a recorded name. */
    public static HqqPacking fromId(String id) {
        for (HqqPacking p : values()) {
            if (p.id.equals(id)) {
                return p;
            }
        }
        throw new IllegalArgumentException("unknown HQQ packing '" + id + "'; expected 8bit_u8, 4bit_u8, 3bit_32, 2bit_u8 or 1bit_u8");
    }

    /** Whether the packed words are int32 (3-bit) rather than bytes. */
    public boolean int32Words() {
        return this == THREE_BIT;
    }

    /** The torch dtype HQQ records as {@code unpack_view_dtype}. */
    public String unpackViewDtype() {
        return int32Words() ? "torch.int32" : "torch.uint8";
    }

    /** Codes per packed word. */
    public int codesPerWord() {
        return perWord;
    }

    /** Bits a code occupies in its word. */
    public int fieldBits() {
        return fieldBits;
    }

    /** Rows of the packed matrix for {@code rows} grouped rows. */
    public long packedRows(long rows) {
        return this == THREE_BIT ? (rows + perWord - 1) / perWord : rows / perWord;
    }

    /** Bytes of the packed matrix for a grouped {@code [rows, cols]}. */
    public long packedBytes(long rows, long cols) {
        return packedRows(rows) * cols * (int32Words() ? 4 : 1);
    }

    /** Rejects a row count this packing cannot split evenly (3-bit pads instead). */
    public void checkRows(long rows) {
        if (this != THREE_BIT && rows % perWord != 0) {
            throw new IllegalArgumentException(String.format(Locale.ROOT,
                    "HQQ %s packs %d rows of the grouped matrix into one; %d rows do not divide", id, perWord, rows));
        }
    }

    /** Packs {@code codes} (row-major {@code [rows, cols]}, one unsigned code per byte). */
    public byte[] pack(byte[] codes, int rows, int cols) {
        checkRows(rows);
        int outRows = Math.toIntExact(packedRows(rows));
        int step = this == THREE_BIT ? outRows : rows / perWord;
        byte[] out = new byte[Math.toIntExact(packedBytes(rows, cols))];
        for (int p = 0; p < outRows; p++) {
            for (int c = 0; c < cols; c++) {
                int word = 0;
                for (int m = 0; m < perWord; m++) {
                    int r = m * step + p;
                    int code = r < rows ? codes[r * cols + c] & 0xFF : 0;
                    word |= code << (fieldBits * (perWord - 1 - m));
                }
                int at = p * cols + c;
                if (int32Words()) {
                    out[4 * at] = (byte) word;
                    out[4 * at + 1] = (byte) (word >>> 8);
                    out[4 * at + 2] = (byte) (word >>> 16);
                    out[4 * at + 3] = (byte) (word >>> 24);
                } else {
                    out[at] = (byte) word;
                }
            }
        }
        return out;
    }

    /** The codes (row-major {@code [rows, cols]}, one per byte) of a packed matrix; 3-bit padding rows dropped. */
    public byte[] unpack(byte[] packed, int rows, int cols) {
        checkRows(rows);
        byte[] codes = new byte[Math.multiplyExact(rows, cols)];
        byte[] word = new byte[perWord * cols];
        ByteBuffer in = ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN);
        for (int p = 0; p < packedRows(rows); p++) {
            unpackWordRow(in, cols, p, word);
            for (int m = 0; m < perWord && groupedRow(rows, p, m) < rows; m++) {
                System.arraycopy(word, m * cols, codes, groupedRow(rows, p, m) * cols, cols);
            }
        }
        return codes;
    }

    /**
     * The codes of packed row {@code p} of a packed matrix of {@code cols} columns: {@code out[m * cols + c]} is the
     * code of column {@code c} in grouped row {@link #groupedRow groupedRow(rows, p, m)}, for every {@code m} below
     * {@link #codesPerWord}; {@code packed} is in little-endian order. Reads are absolute, so threads may unpack
     * different rows of the same buffer.
     */
    void unpackWordRow(ByteBuffer packed, int cols, int p, byte[] out) {
        for (int c = 0; c < cols; c++) {
            int word = word(packed, p * cols + c);
            for (int m = 0; m < perWord; m++) {
                out[m * cols + c] = (byte) code(word, m);
            }
        }
    }

    /**
     * Packed word {@code at} (row-major over the packed matrix) of a buffer in little-endian order, HQQ's, read at an
     * absolute position.
     */
    int word(ByteBuffer packed, int at) {
        return int32Words() ? packed.getInt(4 * at) : packed.get(at) & 0xFF;
    }

    /** The {@code m}-th code of {@code word} (the first in the highest bits). */
    int code(int word, int m) {
        return (word >>> shift(m)) & fieldMask();
    }

    /** The right shift that brings a word's {@code m}-th code to its lowest bits. */
    int shift(int m) {
        return fieldBits * (perWord - 1 - m);
    }

    /** The mask of one code's bits. */
    int fieldMask() {
        return (1 << fieldBits) - 1;
    }

    /**
     * The grouped row of a {@code rows}-row matrix whose code sits at position {@code m} of packed row {@code p}:
     * {@code m * step + p}; at or past {@code rows} for 3-bit padding.
     */
    int groupedRow(int rows, int p, int m) {
        int step = this == THREE_BIT ? (int) packedRows(rows) : rows / perWord;
        return m * step + p;
    }
}
