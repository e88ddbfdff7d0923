package io.qlora4j.quant;

/** The 4-bit data types of bitsandbytes: NormalFloat (QLoRA's default) and FP4 (E2M1). */
public enum QuantType {
    /** 4-bit NormalFloat: 16 quantiles of N(0, 1) scaled to [-1, 1], codes sorted by value. */
    NF4("nf4", Nf4Codebook.VALUES, new NibbleLookup(Nf4Codebook::encode, Nf4Codebook.ASCENDING_CODES)),
    /** 4-bit float E2M1 (bias 2) scaled to [-1, 1]; bit 3 is the sign. */
    FP4("fp4", Fp4Codebook.VALUES, new NibbleLookup(Fp4Codebook::encode, Fp4Codebook.ASCENDING_CODES));

    private final String jsonName;
    private final float[] codebook;
    private final int zeroCode;
    private final float[] byteTable = new float[512];
    private final NibbleLookup lookup;

    QuantType(String jsonName, float[] codebook, NibbleLookup lookup) {
        this.jsonName = jsonName;
        this.codebook = codebook;
        this.lookup = lookup;
        this.zeroCode = lookup.encode(0f);
        for (int b = 0; b < 256; b++) {
            byteTable[2 * b] = codebook[b >>> 4];
            byteTable[2 * b + 1] = codebook[b & 0x0F];
        }
    }

    /** A copy of the 16 float32 values this type decodes to, indexed by code. */
    public float[] codebook() {
        return codebook.clone();
    }

    /** The name bitsandbytes writes in its quant-state JSON ({@code "nf4"} or {@code "fp4"}). */
    public String jsonName() {
        return jsonName;
    }

    /** Parses a type name case-insensitively ({@code nf4}, {@code FP4}, ...). */
    public static QuantType fromName(String name) {
        for (QuantType t : values()) {
            if (t.jsonName.equalsIgnoreCase(name == null ? "" : name.trim())) {
                return t;
            }
        }
        throw new IllegalArgumentException(
                "unknown 4-bit quant type '" + name + "'; expected one of nf4, fp4");
    }

    /** This type's encode rule (bitsandbytes' CUDA decision tree) in table form. */
    NibbleLookup lookup() {
        return lookup;
    }

    /** The code a 0.0 element takes (NF4 7, FP4 0); an all-zero block is filled with it. */
    int zeroCode() {
        return zeroCode;
    }

    /**
     * The 256x2 table that unpacks one byte: entries {@code 2b} and {@code 2b + 1} are the values
     * of the high and the low nibble of byte {@code b}. Shared, not a copy.
     */
    float[] byteTable() {
        return byteTable;
    }
}
