package io.qlora4j.optim;

import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/**
 * The {@code optim:} names of Hugging Face's Trainer and LLaMA-Factory that qlora4j implements: all
 * are AdamW with torch semantics; they differ in where the state lives (resident or paged under a
 * device budget) and in its number format (float32, or bitsandbytes' 8-bit blockwise).
 */
public enum Optim {
    /** Float32 state, all resident on the parameters' device. */
    ADAMW_TORCH("adamw_torch", false, false),
    /** Float32 state in pages under a device budget, the rest in host memory. */
    PAGED_ADAMW_32BIT("paged_adamw_32bit", true, false),
    /** 8-bit blockwise state in pages under a device budget, the rest in host memory. */
    PAGED_ADAMW_8BIT("paged_adamw_8bit", true, true),
    /** 8-bit blockwise state, all resident on the parameters' device. */
    ADAMW_8BIT("adamw_8bit", false, true);

    private final String key;
    private final boolean paged;
    private final boolean eightBit;

    Optim(String key, boolean paged, boolean eightBit) {
        this.key = key;
        this.paged = paged;
        this.eightBit = eightBit;
    }

    /** The name as written in a job file, e.g. {@code paged_adamw_8bit}. */
    public String key() {
        return key;
    }

    /** Whether the state is paged under a device budget (the others keep it all resident). */
    public boolean paged() {
        return paged;
    }

    /**
     * Whether tensors of 4096 or more elements keep 8-bit blockwise state (smaller ones float32, as
     * bitsandbytes' {@code min_8bit_size}).
     */
    public boolean eightBit() {
        return eightBit;
    }

    /**
     * Bytes of the state this optimizer keeps for a tensor of {@code elements}: both moments in float32 (8 bytes per
     * element), or for 8-bit states of a large enough tensor one code byte per moment and element plus two float32
     * absmax per block of 256.
     */
    public long stateBytes(long elements) {
        PageFormat format = eightBit && elements >= Blockwise8BitFormat.MIN_8BIT_SIZE
                ? Blockwise8BitFormat.INSTANCE : Float32Format.INSTANCE;
        return format.bytes(elements);
    }

    /** All names in declaration order, for configuration choices and messages. */
    public static List<String> keys() {
        return Arrays.stream(values()).map(Optim::key).collect(Collectors.toList());
    }

    /** The optimizer of a job-file name; an unknown name is an error that lists the known ones. */
    public static Optim of(String key) {
        for (Optim optim : values()) {
            if (optim.key.equals(key)) {
                return optim;
            }
        }
        throw new IllegalArgumentException(
                "optim '" + key + "' is not one of " + String.join(", ", keys()));
    }
}
