package io.qlora4j.model.safetensors;

import java.util.Set;

/** Element types of a safetensors tensor, spelled as in the file header. */
public enum DType {
    BOOL(1), U8(1), I8(1), I16(2), U16(2), F16(2), BF16(2), I32(4), U32(4), F32(4), F64(8), I64(8), U64(8);

    /** Sub-byte and 8-bit float types the format defines but qlora4j does not read. */
    private static final Set<String> UNSUPPORTED =
            Set.of("F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64");

    private final int size;

    DType(int size) {
        this.size = size;
    }

    /** Bytes per element. */
    public int size() {
        return size;
    }

    /**
     * The type for a header spelling such as {@code "BF16"}.
     *
     * @throws IllegalArgumentException for an unknown spelling or a recognised but unsupported one
     */
    public static DType fromName(String name) {
        for (DType t : values()) {
            if (t.name().equals(name)) {
                return t;
            }
        }
        if (UNSUPPORTED.contains(name)) {
            throw new IllegalArgumentException("dtype " + name + " is not supported (convert the checkpoint to F32, F16 or BF16)");
        }
        throw new IllegalArgumentException("unknown dtype '" + name + "'");
    }
}
