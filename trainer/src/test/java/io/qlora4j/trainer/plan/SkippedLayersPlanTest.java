package io.qlora4j.trainer.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.llama.LlamaFamily;
import io.qlora4j.trainer.plan.ActivationModel.Activations;
import io.qlora4j.trainer.plan.ActivationModel.Recompute;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The memory of the layers a recompute skips, against what the plan without recompute keeps per layer, on Llama-2-7B's
 * shape at 2 x 512 tokens.
 */
class SkippedLayersPlanTest {
    private static final ModelShape LLAMA2_7B = ModelShape.of(LlamaFamily.builder(4096, 11008, 32, 32, 32000).build());
    private static final ActivationModel MODEL = new ActivationModel(LLAMA2_7B, 4, 64, false, 8 << 20);
    private static final List<String> ALL = List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
            "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj");

    @Test
    void eachSkippedLayerKeepsOneLayerOfTheGraphWithoutRecompute() {
        Activations none = MODEL.of(Recompute.NONE, 2, 512);
        long perLayer = none.graph().total() / 32;
        assertEquals(32 * perLayer, none.graph().total());
        Activations full = MODEL.of(Recompute.BLOCK, 2, 512);
        assertEquals(full.peak(), MODEL.of(RecomputePolicy.BLOCK.skipping(0), 2, 512).peak());
        long previous = 0;
        for (int k = 1; k <= 32; k++) {
            Activations skipping = MODEL.of(RecomputePolicy.BLOCK.skipping(k), 2, 512);
            assertEquals(k * perLayer, skipping.graph().total(), "graphs of " + k + " layers");
            assertEquals(full.hiddenStates(), skipping.hiddenStates());
            if (k > 1) {
                // the skipped layers' graphs live through the loss head and the top one's backward: the peak's phase
                assertEquals(perLayer, skipping.peak().total() - previous, "peak step at " + k);
            }
            previous = skipping.peak().total();
        }
        // more layers than the model has skips them all
        assertEquals(previous, MODEL.of(RecomputePolicy.BLOCK.skipping(99), 2, 512).peak().total());
        // one skipped layer's graph is no larger than the recomputed block it replaces, and this head is small beside
        // its backward: the first layer skipped costs this shape nothing at the peak
        assertEquals(full.peak(), MODEL.of(RecomputePolicy.BLOCK.skipping(1), 2, 512).peak());
    }

    @Test
    void aSelectiveRecomputeKeepsNoProductsOfItsSkippedLayers() {
        long perLayerProducts = MODEL.keptBytes(ALL, 2, 512) / 32;
        Activations selective = MODEL.of(RecomputePolicy.selective(ALL), 2, 512);
        for (int k : new int[] {1, 8, 32}) {
            Activations skipping = MODEL.of(RecomputePolicy.selective(ALL).skipping(k), 2, 512);
            assertEquals(selective.hiddenStates().total() - k * perLayerProducts, skipping.hiddenStates().total());
            // a skipped layer's graph holds every projection's weight, as the full recompute's does
            assertEquals(MODEL.of(RecomputePolicy.BLOCK.skipping(k), 2, 512).graph(), skipping.graph());
        }
    }

    @Test
    void weightsAreHeldBelowTheSkippedLayersOnlyAndAPlanThatDoesNotFitSkipsFewer() {
        MemoryPlanner.Builder builder = MemoryPlanner.builder(LLAMA2_7B).optFormat(BaseFormats.QLORA).optRank(64)
                .optBatch(2).optSeq(512).optDevice(MemoryPlanner.Device.CUDA).optHeldWeights(Long.MAX_VALUE)
                .optSkippedLayers(30);
        long block = LLAMA2_7B.blockLinearParameters() * 4;
        assertEquals(2 * block, builder.build().plan().part("held_weights").bytes());
        long skipping = builder.optHeldWeights(0).build().plan().deviceBytes();
        long full = builder.optSkippedLayers(0).build().plan().deviceBytes();
        long between = (skipping + full) / 2;
        PlanReport report = PlanReport.of(builder.optSkippedLayers(30).optLimit(between, "device_memory_gb").build());
        assertFalse(report.plan().fits());
        String advice = report.advice().get(0);
        assertTrue(advice.startsWith("gradient_checkpointing_skip_layers="), advice);
        int offered = Integer.parseInt(advice.substring(advice.indexOf('=') + 1, advice.indexOf(' ')));
        assertTrue(offered > 0 && offered < 30, advice);
        assertTrue(builder.optSkippedLayers(offered).build().plan().fits());
        assertFalse(builder.optSkippedLayers(offered + 1).build().plan().fits());
        assertEquals(skipping, report.policies().get("gradient_checkpointing_skip_layers=30"));
        // what inspect says of the skipped layers that fit: the same most, and none without a limit
        assertEquals(offered, report.skippableLayers());
        assertTrue(report.json().contains("\"skippable_layers\":" + offered), report.json());
        assertEquals(null, PlanReport.of(builder.optLimit(null, null).build()).skippableLayers());
        // a job without recompute is shown what recomputing all but its top layer would take
        PlanReport none = PlanReport.of(builder.optRecompute(Recompute.NONE).optSkippedLayers(0)
                .optLimit(between, "device_memory_gb").build());
        assertEquals(offered, none.skippableLayers());
        assertEquals(builder.optRecompute(Recompute.BLOCK).optSkippedLayers(1).build().plan().limitedBytes(),
                none.policies().get("gradient_checkpointing=true gradient_checkpointing_skip_layers=1"));
    }
}
