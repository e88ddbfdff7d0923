package io.qlora4j.adapters;

import java.util.List;

/**
 * The registered {@link AdapterInit}s and their PEFT spellings. Adding one: a class in this package extending
 * {@link AdapterInit}, a factory here, and its {@code init_lora_weights} value in {@link #fromPeft}.
 */
public final class AdapterInits {
    /**
     * {@code init_lora_weights} values whose start keeps the base weights: only the starting A and B differ, and a
     * loaded adapter replaces those, so they load as LoRA's.
     */
    private static final List<String> KEEPING_BASE = List.of("gaussian", "eva", "orthogonal");

    private AdapterInits() {}

    /** LoRA's own start: A Kaiming-uniform, B = 0 ({@code init_lora_weights: true}). */
    public static AdapterInit lora() {
        return LoraInit.INSTANCE;
    }

    /** PiSSA: exact SVD for {@code iterations = -1} ({@code "pissa"}), else {@code "pissa_niter_<iterations>"}. */
    public static AdapterInit pissa(int iterations) {
        return new PissaInit(iterations);
    }

    /** LoftQ with {@code loftq_config: {"loftq_bits": bits, "loftq_iter": iterations}}. */
    public static AdapterInit loftq(int bits, int iterations) {
        return new LoftqInit(bits, iterations);
    }

    /**
     * The start an adapter_config.json describes: {@code value} is its {@code init_lora_weights} (a Boolean or a
     * String; null when absent), {@code loftqBits} and {@code loftqIterations} its {@code loftq_config} (PEFT's
     * defaults 4 and 1 when absent).
     *
     * @throws IllegalArgumentException for a value that rewrites the base in a way qlora4j does not reproduce
     */
    static AdapterInit fromPeft(Object value, int loftqBits, int loftqIterations) {
        if (value == null || value instanceof Boolean || KEEPING_BASE.contains(value)) {
            return lora();
        }
        String text = value.toString();
        if (text.equals("pissa")) {
            return pissa(-1);
        }
        if (text.startsWith("pissa_niter_")) {
            try {
                return pissa(Integer.parseInt(text.substring("pissa_niter_".length())));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("'" + text + "' is not pissa_niter_<iterations>");
            }
        }
        if (text.equals("loftq")) {
            return loftq(loftqBits, loftqIterations);
        }
        throw new IllegalArgumentException("'" + text + "' is not implemented (qlora4j reproduces true, false, "
                + String.join(", ", KEEPING_BASE) + ", pissa, pissa_niter_<K> and loftq)");
    }
}
