package io.qlora4j.adapters;

import java.util.List;
import java.util.function.Predicate;

/**
 * The registered {@link AdapterVariant}s. Adding one: a class in this package extending {@link AdapterVariant} and
 * one entry in {@link #ALL}.
 */
public final class AdapterVariants {
    /** Every variant qlora4j computes, plain LoRA first. */
    private static final List<AdapterVariant> ALL = List.of(PlainLora.INSTANCE, Dora.INSTANCE);

    private AdapterVariants() {}

    /** Plain LoRA (no flag set). */
    public static AdapterVariant lora() {
        return PlainLora.INSTANCE;
    }

    /** Every variant, plain LoRA first. */
    public static List<AdapterVariant> all() {
        return ALL;
    }

    /**
     * The variant whose {@link AdapterVariant#peftFlag} is set according to {@code isSet} (PEFT config flags or job
     * keys), plain LoRA when none is.
     *
     * @throws IllegalArgumentException when two variants' flags are set (PEFT computes one variant per layer)
     */
    public static AdapterVariant fromFlags(Predicate<String> isSet) {
        AdapterVariant chosen = PlainLora.INSTANCE;
        for (AdapterVariant v : ALL) {
            if (v.peftFlag() != null && isSet.test(v.peftFlag())) {
                if (chosen != PlainLora.INSTANCE) {
                    throw new IllegalArgumentException(chosen.peftFlag() + " and " + v.peftFlag()
                            + " cannot be combined: a layer computes one adapter variant");
                }
                chosen = v;
            }
        }
        return chosen;
    }
}
