package io.qlora4j.adapters;

import java.util.Locale;

/** The weights a merge adds {@code scaling * B @ A} to. */
public enum MergeBase {
    /**
     * The checkpoint's full-precision weights, as PEFT's {@code merge_and_unload} and LLaMA-Factory do: right for an
     * adapter trained on a dense base; for one trained on a quantized base it adds {@code W - dequant(Wq)}, an error
     * the adapter never saw.
     */
    ORIGINAL,
    /**
     * {@code dequant(Wq)}, every block projection quantized and dequantized with the base format the adapter was
     * trained against: the merged model computes exactly the function base(quantized) + adapter computed in
     * training.
     */
    DEQUANTIZED;

    /** {@code original} or {@code dequantized}, as the {@code merge_base} key spells it. */
    public String jsonName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The value for a {@code merge_base} spelling, case-insensitively. */
    public static MergeBase fromName(String name) {
        for (MergeBase b : values()) {
            if (b.jsonName().equalsIgnoreCase(name == null ? "" : name.trim())) {
                return b;
            }
        }
        throw new IllegalArgumentException("merge_base '" + name + "' is not one of original, dequantized");
    }
}
