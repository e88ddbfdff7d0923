package io.qlora4j.trainer.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.adapters.AdapterVariants;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.llama.LlamaFamily;
import io.qlora4j.optim.Optim;
import io.qlora4j.trainer.plan.ActivationModel.Recompute;
import java.util.List;
import org.junit.jupiter.api.Test;

class MemoryPlannerTest {
    private static final ModelShape LLAMA2_7B = ModelShape.of(LlamaFamily.builder(4096, 11008, 32, 32, 32000).build());
    /** LLaMA-65B as its config.json says: float16 weights, 80 layers, untied. */
    static final ModelShape LLAMA_65B = ModelShape.of(LlamaFamily.builder(8192, 22016, 80, 64, 32000)
            .optRmsNormEps(1e-5).optTorchDtype("float16").build());

    @Test
    void parameterCountsMatchThePublishedModels() {
        // Published totals: Llama-2-7B 6,738,415,616; TinyLlama-1.1B 1,100,048,384; Llama-3-8B 8,030,261,248;
        // LLaMA-65B 65,285,660,672
        assertEquals(6_738_415_616L, LLAMA2_7B.parameters());
        assertEquals(1_100_048_384L, ModelShape.of(LlamaFamily.builder(2048, 5632, 22, 32, 32000)
                .optNumKeyValueHeads(4).build()).parameters());
        assertEquals(8_030_261_248L, ModelShape.of(LlamaFamily.builder(4096, 14336, 32, 32, 128256)
                .optNumKeyValueHeads(8).build()).parameters());
        assertEquals(65_285_660_672L, LLAMA_65B.parameters());
    }

    @Test
    void nf4BaseIsFourPointOneTwoSevenBitsPlusItsTablesAndLlmInt8EightPlusARowScale() {
        MemoryPlan nf4 = MemoryPlanner.builder(LLAMA2_7B).optFormat(BaseFormats.QLORA).build().plan();
        // per projection of n weights: n/2 code bytes, a u8 scale per block of 64 and a float32 absmax per 256 blocks
        // (4 + 8/64 + 32/(64*256) bits per parameter), plus the device's per-tensor tables: the NF4 code table as
        // 256 float32 pairs, the 256-entry dynamic map and the offset
        long expected = 0;
        for (long n : new long[] {4096L * 4096, 4096L * 4096, 4096L * 4096, 4096L * 4096, 11008L * 4096, 11008L * 4096,
            4096L * 11008}) {
            long blocks = n / 64;
            long nested = (blocks + 255) / 256;
            expected += n / 2 + nested * 256 + 4 * nested + 256 * 2 * 4 + 256 * 4 + 4;
        }
        assertEquals(32 * expected, nf4.part("base_weights").bytes());
        BaseFormat int8 = BaseFormats.menu().stream().filter(f -> f.bits() == 8).findFirst().orElseThrow();
        MemoryPlan plan = MemoryPlanner.builder(LLAMA2_7B).optFormat(int8).build().plan();
        // one int8 code per weight plus one float32 SCB per output row of each of the 7 projections
        long rows = 4096 * 4 + 11008 * 2 + 4096;
        assertEquals(32 * (LLAMA2_7B.blockLinearParameters() + 4 * rows), plan.part("base_weights").bytes());
    }

    /** held_weights_mb buys whole blocks from the top, each its seven projections in float32 (by hand for Llama-2-7B). */
    @Test
    void heldWeightsAreWholeBlocksOfProjectionsInTheComputeDtype() {
        long block = 4L * (4 * 4096 * 4096 + 3 * 4096 * 11008); // 810,549,248 bytes
        MemoryPlanner.Builder planner = MemoryPlanner.builder(LLAMA2_7B).optFormat(BaseFormats.QLORA)
                .optHeldWeights(2 * block + block / 2);
        MemoryPlan plan = planner.build().plan();
        assertEquals(2 * block, plan.part("held_weights").bytes());
        assertEquals(plan.limitedBytes(), MemoryPlanner.builder(LLAMA2_7B).build().plan().limitedBytes() + 2 * block);
        assertEquals(32 * block, MemoryPlanner.builder(LLAMA2_7B).optHeldWeights(Long.MAX_VALUE).build().plan()
                .part("held_weights").bytes());
        // nothing to hold: below one block, without recompute, over a dense base
        for (MemoryPlanner.Builder none : List.of(MemoryPlanner.builder(LLAMA2_7B).optHeldWeights(block - 1),
                planner.optRecompute(Recompute.NONE), MemoryPlanner.builder(LLAMA2_7B).optFormat(BaseFormats.DENSE)
                        .optHeldWeights(Long.MAX_VALUE))) {
            assertTrue(none.build().plan().parts().stream().noneMatch(p -> p.key().equals("held_weights")));
        }
    }

    @Test
    void loraWeightsGradientsAndStateAreCountedInTheirDtypes() {
        MemoryPlan plan = MemoryPlanner.builder(LLAMA2_7B).optRank(64).optOptim(Optim.ADAMW_TORCH).build().plan();
        // by hand, r=64 on all 7 linears: 64 * (4 * 8192 + 3 * 15104) per layer * 32 layers = 159,907,840
        long lora = 159_907_840L;
        assertEquals(4 * lora, plan.part("adapter_weights").bytes());
        assertEquals(4 * lora, plan.part("gradients").bytes());
        assertEquals(8 * lora, plan.part("optimizer_device").bytes());
        assertEquals(0, plan.part("optimizer_host").bytes());
        // DoRA adds a magnitude per output row: 4096 * 4 + 11008 * 2 + 4096 per layer
        MemoryPlan dora = MemoryPlanner.builder(LLAMA2_7B).optRank(64).optVariant(AdapterVariants.fromFlags("use_dora"::equals)).build().plan();
        assertEquals(4 * (lora + 32L * (4096 * 4 + 11008 * 2 + 4096)), dora.part("adapter_weights").bytes());
    }

    @Test
    void eightBitStateIsTwoCodesPerElementAndTwoScalesPerBlockOf256() {
        ModelShape shape = ModelShape.of(LlamaFamily.builder(64, 128, 1, 2, 100).build());
        MemoryPlan plan = MemoryPlanner.builder(shape).optRank(8).optTargets(List.of("self_attn.q_proj", "mlp.up_proj"))
                .optOptim(Optim.PAGED_ADAMW_8BIT).build().plan();
        // q: A [8, 64] and B [64, 8], 512 elements each (< 4096: float32, 8 bytes each); up: A [8, 64] (float32),
        // B [128, 8] 1024 elements (float32): all below bitsandbytes' min_8bit_size
        assertEquals(8 * (512 + 512 + 512 + 1024), plan.part("optimizer_device").bytes());
        ModelShape wide = ModelShape.of(LlamaFamily.builder(1024, 2048, 1, 2, 100).build());
        MemoryPlan wider = MemoryPlanner.builder(wide).optRank(8).optTargets(List.of("self_attn.q_proj"))
                .optOptim(Optim.PAGED_ADAMW_8BIT).build().plan();
        // A [8, 1024] and B [1024, 8]: 8192 elements each, 32 blocks: 2 * 8192 + 8 * 32 bytes each
        assertEquals(2 * (2 * 8192 + 8 * 32), wider.part("optimizer_device").bytes());
    }

    @Test
    void pagedBudgetSplitsTheStateBetweenDeviceAndHost() {
        MemoryPlan plan = MemoryPlanner.builder(LLAMA2_7B).optRank(64).optOptim(Optim.PAGED_ADAMW_32BIT)
                .optPagedBudget(100L << 20).optDevice(MemoryPlanner.Device.CUDA).build().plan();
        assertEquals(100L << 20, plan.part("optimizer_device").bytes());
        assertEquals(8 * 159_907_840L - (100L << 20), plan.part("optimizer_host").bytes());
        assertEquals(plan.part("optimizer_host").bytes() + plan.part("process").bytes(), plan.hostBytes());
    }

    @Test
    void recomputeKeepsOneHiddenStatePerBlockBoundaryAndFarLessThanTheWholeGraph() {
        ActivationModel model = new ActivationModel(LLAMA2_7B, 4, 64, false, 8 << 20);
        ActivationModel.Activations block = model.of(Recompute.BLOCK, 2, 512);
        // and the step's one float32 attention mask [2, 1, 512, 512]
        assertEquals(33L * 2 * 512 * 4096 * 4 + 2L * 512 * 512 * 4, block.hiddenStates().total());
        ActivationModel.Activations none = model.of(Recompute.NONE, 2, 512);
        // without recompute every block's dequantized float32 weights stay for the backward pass
        assertTrue(none.graph().total() > 32 * LLAMA2_7B.blockLinearParameters() * 4, none.toString());
        assertTrue(block.peak().total() * 10 < none.peak().total(), block + " vs " + none);
    }

    @Test
    void guanaco65bPlansBelow48GbInSixteenBitsAndNotInFloat32WhereFloat16IsTheAdvice() {
        MemoryPlanner.Builder guanaco = MemoryPlanner.builder(LLAMA_65B).optFormat(BaseFormats.QLORA).optRank(64)
                .optDropout(true).optOptim(Optim.PAGED_ADAMW_32BIT).optBatch(1).optSeq(528)
                .optDevice(MemoryPlanner.Device.CUDA).optLimit(48_000_000_000L, "device_memory_gb 48");
        MemoryPlan half = guanaco.optComputeBytes(2).build().plan();
        assertTrue(half.fits(), () -> half.deviceBytes() + " bytes");
        // the paged optimizer keeps its state off the device when the device is full
        assertEquals(8 * 799_539_200L, half.part("optimizer_device").bytes() + half.part("optimizer_host").bytes());
        // float32 activations and dequantized weights: 8192 x 22016 x 4 bytes for one projection alone
        PlanReport full = PlanReport.of(guanaco.optComputeBytes(4).build());
        assertFalse(full.plan().fits(), () -> full.plan().deviceBytes() + " bytes");
        assertTrue(full.advice().stream().anyMatch(a -> a.startsWith("fp16=true")), full.advice().toString());
    }

    @Test
    void aPlanThatDoesNotFitOffersOnlySettingsThatFit() {
        MemoryPlanner planner = MemoryPlanner.builder(LLAMA2_7B).optRank(64).optOptim(Optim.ADAMW_TORCH).optBatch(2)
                .optSeq(1024).optRecompute(Recompute.NONE).optDevice(MemoryPlanner.Device.CUDA)
                .optLimit(24_000_000_000L, "device_memory_gb 24").build();
        PlanReport report = PlanReport.of(planner);
        assertFalse(report.plan().fits());
        assertTrue(report.advice().stream().anyMatch(a -> a.startsWith("gradient_checkpointing=true")),
                report.advice().toString());
        for (String advice : report.advice()) {
            assertTrue(advice.matches(".*margin \\d+\\.\\d\\d GB$"), advice);
        }
    }

    @Test
    void aBatchTooLargeForSixtyFourBitsIsRefusedNotWrapped() {
        MemoryPlanner planner = MemoryPlanner.builder(LLAMA2_7B).optBatch(Integer.MAX_VALUE)
                .optSeq(Integer.MAX_VALUE).build();
        assertThrows(ArithmeticException.class, planner::plan);
    }
}
