package io.qlora4j.trainer.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.llama.LlamaFamily;
import io.qlora4j.trainer.plan.ActivationModel.Activations;
import io.qlora4j.trainer.plan.ActivationModel.Recompute;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The memory of a selective recompute's kept products, counted by hand for Llama-2-7B's shape. */
class SelectiveRecomputePlanTest {
    private static final ModelShape LLAMA2_7B = ModelShape.of(LlamaFamily.builder(4096, 11008, 32, 32, 32000).build());
    private static final List<String> ALL = List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
            "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj");
    /** One [2 x 512 tokens, width] float32 product over all 32 layers. */
    private static final long PER_WIDTH = 32L * 1024 * 4;

    @Test
    void everyProductCostsItsOutputWidthPerTokenPerLayer() {
        ActivationModel model = new ActivationModel(LLAMA2_7B, 4, 64, false, 8 << 20);
        assertEquals(PER_WIDTH * (4 * 4096 + 2 * 11008 + 4096), model.keptBytes(ALL, 2, 512));
        assertEquals(ALL, model.keptWithin(null, 2, 512));
    }

    @Test
    void aBudgetKeepsTheWidestInputsFirstThenBlockOrder() {
        ActivationModel model = new ActivationModel(LLAMA2_7B, 4, 64, false, 8 << 20);
        // down_proj reads 11008 features: 2 x 11008 FLOP saved per byte-sized element, the most of all
        long down = PER_WIDTH * 4096;
        assertEquals(List.of("mlp.down_proj"), model.keptWithin(down, 2, 512));
        assertEquals(List.of("mlp.down_proj"), model.keptWithin(down + PER_WIDTH * 4096 - 1, 2, 512));
        // then the 4096-input projections in block order, each one that still fits: q, k, v, o (gate is too wide)
        assertEquals(List.of("self_attn.q_proj", "mlp.down_proj"), model.keptWithin(2 * down, 2, 512));
        assertEquals(List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                "mlp.down_proj"), model.keptWithin(5 * down + PER_WIDTH * 11008 - 1, 2, 512));
        assertEquals(List.of(), model.keptWithin(down - 1, 2, 512));
    }

    @Test
    void keptProductsAddToEveryPhaseAndTheRecomputedBlockHoldsFewerWeights() {
        ActivationModel model = new ActivationModel(LLAMA2_7B, 4, 64, false, 8 << 20);
        Activations block = model.of(Recompute.BLOCK, 2, 512);
        Activations selective = model.of(RecomputePolicy.selective(ALL), 2, 512);
        Activations none = model.of(Recompute.NONE, 2, 512);
        assertEquals(block.hiddenStates().total() + model.keptBytes(ALL, 2, 512), selective.hiddenStates().total());
        // its graph drops every dequantized float32 weight of the block (the input gradients dequantize one at a time)
        assertTrue(selective.block().total() < block.block().total() - LLAMA2_7B.blockLinearParameters() * 4 / 2,
                selective + " vs " + block);
        assertTrue(block.peak().total() < selective.peak().total(), selective + " vs " + block);
        assertTrue(selective.peak().total() < none.peak().total(), selective + " vs " + none);
        // keeping nothing plans as the full recompute but for the gradients at the cuts, of which there are none
        assertEquals(block.peak(), model.of(RecomputePolicy.selective(List.of()), 2, 512).peak());
    }

    @Test
    void aSelectivePlanThatDoesNotFitOffersTheFullRecompute() {
        MemoryPlanner.Builder builder = MemoryPlanner.builder(LLAMA2_7B).optRank(64).optBatch(2).optSeq(1024)
                .optRecompute(Recompute.SELECTIVE).optKeptProducts(ALL).optDevice(MemoryPlanner.Device.CUDA);
        long selective = builder.build().plan().deviceBytes();
        long full = builder.optRecompute(Recompute.BLOCK).optKeptProducts(List.of()).build().plan().deviceBytes();
        long between = (selective + full) / 2;
        PlanReport report = PlanReport.of(builder.optRecompute(Recompute.SELECTIVE).optKeptProducts(ALL)
                .optLimit(between, "device_memory_gb " + between / 1e9).build());
        assertFalse(report.plan().fits());
        assertTrue(report.advice().stream().anyMatch(a -> a.startsWith("gradient_checkpointing_mode=full")),
                report.advice().toString());
        // what inspect prints beside the plan: the same run under each policy
        assertEquals(List.of("gradient_checkpointing=false", "gradient_checkpointing_mode=full",
                "gradient_checkpointing_mode=selective",
                "gradient_checkpointing_mode=selective gradient_checkpointing_skip_layers=1"),
                List.copyOf(report.policies().keySet()));
        assertEquals(full, report.policies().get("gradient_checkpointing_mode=full"));
        assertEquals(selective, report.policies().get("gradient_checkpointing_mode=selective"));
        assertTrue(report.policies().get("gradient_checkpointing=false") > selective, report.policies().toString());
    }
}
