package io.qlora4j.trainer.plan;

import io.qlora4j.trainer.plan.ActivationModel.Recompute;
import java.util.List;

/**
 * What a training step's backward pass recomputes: nothing, every block, or every block but the base products of the
 * kept projections ({@code self_attn.o_proj}, ...), which the forward pass keeps.
 *
 * @param mode the policy
 * @param kept the projections whose base products are kept (empty unless {@link Recompute#SELECTIVE})
 */
public record RecomputePolicy(Recompute mode, List<String> kept) {
    /** The whole graph kept ({@code gradient_checkpointing: false}). */
    public static final RecomputePolicy NONE = new RecomputePolicy(Recompute.NONE, List.of());
    /** Every block recomputed ({@code gradient_checkpointing_mode: full}). */
    public static final RecomputePolicy BLOCK = new RecomputePolicy(Recompute.BLOCK, List.of());

    /** Checks that only a selective recompute keeps products, and copies the list. */
    public RecomputePolicy {
        kept = List.copyOf(kept);
        if (mode != Recompute.SELECTIVE && !kept.isEmpty()) {
            throw new IllegalArgumentException(mode + " keeps no products, got " + kept);
        }
    }

    /** A selective recompute keeping the base products of {@code kept}. */
    public static RecomputePolicy selective(List<String> kept) {
        return new RecomputePolicy(Recompute.SELECTIVE, kept);
    }

    /** Whether blocks are recomputed at all. */
    public boolean recomputes() {
        return mode != Recompute.NONE;
    }

    /** A few words for tables and plans. */
    public String describe() {
        return switch (mode) {
            case NONE -> "no recompute";
            case BLOCK -> "full recompute";
            case SELECTIVE -> "selective recompute keeping " + (kept.isEmpty() ? "nothing" : String.join(", ", kept));
        };
    }
}
