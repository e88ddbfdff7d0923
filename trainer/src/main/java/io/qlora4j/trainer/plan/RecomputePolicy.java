package io.qlora4j.trainer.plan;

import io.qlora4j.trainer.plan.ActivationModel.Recompute;
import java.util.List;

/**
 * What a training step's backward pass recomputes: nothing, every block, or every block but the base products of the
 * kept projections ({@code self_attn.o_proj}, ...), which the forward pass keeps; in the last two, the top
 * {@code skippedLayers} blocks are not recomputed at all (their forward pass keeps its graph).
 *
 * @param mode the policy
 * @param kept the projections whose base products are kept (empty unless {@link Recompute#SELECTIVE})
 * @param skippedLayers the top blocks that keep their forward pass's graph instead of being recomputed
 *     ({@code gradient_checkpointing_skip_layers}; 0 unless blocks are recomputed; more than the model's layers
 *     means all of them)
 */
public record RecomputePolicy(Recompute mode, List<String> kept, int skippedLayers) {
    /** The whole graph kept ({@code gradient_checkpointing: false}). */
    public static final RecomputePolicy NONE = new RecomputePolicy(Recompute.NONE, List.of(), 0);
    /** Every block recomputed ({@code gradient_checkpointing_mode: full}). */
    public static final RecomputePolicy BLOCK = new RecomputePolicy(Recompute.BLOCK, List.of(), 0);

    /** Checks that only a selective recompute keeps products and only a recompute skips layers, and copies the list. */
    public RecomputePolicy {
        kept = List.copyOf(kept);
        if (mode != Recompute.SELECTIVE && !kept.isEmpty()) {
            throw new IllegalArgumentException(mode + " keeps no products, got " + kept);
        }
        if (skippedLayers < 0 || mode == Recompute.NONE && skippedLayers != 0) {
            throw new IllegalArgumentException(mode + " cannot skip " + skippedLayers + " layers");
        }
    }

    /** A selective recompute keeping the base products of {@code kept}. */
    public static RecomputePolicy selective(List<String> kept) {
        return new RecomputePolicy(Recompute.SELECTIVE, kept, 0);
    }

    /** This policy with the top {@code layers} blocks not recomputed. */
    public RecomputePolicy skipping(int layers) {
        return new RecomputePolicy(mode, kept, layers);
    }

    /** Whether blocks are recomputed at all. */
    public boolean recomputes() {
        return mode != Recompute.NONE;
    }

    /** A few words for tables and plans. */
    public String describe() {
        String skipped = skippedLayers == 0 ? "" : skippedLayers == 1 ? ", the top layer not recomputed"
                : ", the top " + skippedLayers + " layers not recomputed";
        return switch (mode) {
            case NONE -> "no recompute";
            case BLOCK -> "full recompute" + skipped;
            case SELECTIVE -> "selective recompute keeping " + (kept.isEmpty() ? "nothing" : String.join(", ", kept))
                    + skipped;
        };
    }
}
