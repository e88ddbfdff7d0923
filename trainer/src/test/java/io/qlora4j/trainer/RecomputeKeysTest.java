package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import io.qlora4j.trainer.plan.MemoryPlanner;
import io.qlora4j.trainer.plan.RecomputePolicy;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The recompute keys of a job ({@code gradient_checkpointing} and qlora4j's selective mode) as the policy run. */
class RecomputeKeysTest {
    /** hidden 16, MLP 32, 2 layers, 4 query heads over 2 key/value heads. */
    private static final DecoderConfig TINY = TinyModel.config(16);

    private static RecomputePolicy policy(String... keys) throws ConfigException {
        return JobPlan.recompute(JobConfig.of(keys), TINY, MemoryPlanner.Device.CPU);
    }

    @Test
    void llamaFactorysKeysChooseFullRecomputeOrNone() throws Exception {
        assertEquals(RecomputePolicy.BLOCK, policy());
        assertEquals(RecomputePolicy.NONE, policy("gradient_checkpointing=false"));
        assertEquals(RecomputePolicy.NONE, policy("disable_gradient_checkpointing=true"));
        assertEquals(RecomputePolicy.NONE, policy("disable_gradient_checkpointing=true", "gradient_checkpointing_mode=full"));
        // full fine-tuning trains the weights a kept product would stand for
        assertEquals(RecomputePolicy.BLOCK, policy("finetuning_type=full"));
    }

    @Test
    void theSelectiveModeKeepsWhatItsBudgetHolds() throws Exception {
        List<String> all = TINY.linearNames();
        assertEquals(RecomputePolicy.selective(all), policy("gradient_checkpointing_mode=selective"));
        // 1 x 64 tokens of float32 on 2 layers: down_proj's products (the widest input) 8 KiB, q_proj's 8, k_proj's 4
        assertEquals(RecomputePolicy.selective(List.of("mlp.down_proj")), policy("gradient_checkpointing_mode=selective",
                "per_device_train_batch_size=1", "cutoff_len=64", "gradient_checkpointing_budget_mb=" + 8.0 / 1024));
        assertEquals(RecomputePolicy.selective(List.of("self_attn.k_proj", "mlp.down_proj")),
                policy("gradient_checkpointing_mode=selective", "per_device_train_batch_size=1", "cutoff_len=64",
                        "gradient_checkpointing_budget_mb=" + 12.0 / 1024));
        assertEquals(RecomputePolicy.selective(List.of()), policy("gradient_checkpointing_mode=selective",
                "gradient_checkpointing_budget_mb=0"));
    }

    @Test
    void skippedLayersLeaveTheTopLayersOutOfEitherRecompute() throws Exception {
        assertEquals(RecomputePolicy.BLOCK.skipping(1), policy("gradient_checkpointing_skip_layers=1"));
        assertEquals(RecomputePolicy.selective(TINY.linearNames()).skipping(5),
                policy("gradient_checkpointing_mode=selective", "gradient_checkpointing_skip_layers=5"));
        assertEquals(RecomputePolicy.NONE,
                policy("gradient_checkpointing=false", "gradient_checkpointing_skip_layers=0"));
        assertEquals("gradient_checkpointing_skip_layers applies to gradient checkpointing on (gradient_checkpointing:"
                + " true, disable_gradient_checkpointing: false); without it no layer is recomputed",
                assertThrows(ConfigException.class, () -> policy("disable_gradient_checkpointing=true",
                        "gradient_checkpointing_skip_layers=2")).getMessage());
        String negative = assertThrows(ConfigException.class, () -> policy("gradient_checkpointing_skip_layers=-1"))
                .getMessage();
        assertTrue(negative.contains("gradient_checkpointing_skip_layers"), negative);
    }

    @Test
    void contradictingKeysAreRefusedInOneLineNamingThem() {
        assertEquals("gradient_checkpointing_mode: selective needs gradient checkpointing on (gradient_checkpointing:"
                + " true, disable_gradient_checkpointing: false)", assertThrows(ConfigException.class,
                        () -> policy("gradient_checkpointing_mode=selective", "disable_gradient_checkpointing=true"))
                .getMessage());
        assertEquals("gradient_checkpointing_mode: selective keeps products of frozen base weights; finetuning_type:"
                + " full trains them (use gradient_checkpointing_mode: full)", assertThrows(ConfigException.class,
                        () -> policy("gradient_checkpointing_mode=selective", "finetuning_type=full")).getMessage());
        assertEquals("gradient_checkpointing_budget_mb applies to gradient_checkpointing_mode: selective only, which"
                + " this job does not run", assertThrows(ConfigException.class,
                        () -> policy("gradient_checkpointing_budget_mb=64")).getMessage());
        String bad = assertThrows(ConfigException.class, () -> policy("gradient_checkpointing_mode=partial")).getMessage();
        assertTrue(bad.endsWith("gradient_checkpointing_mode: 'partial' is not allowed (allowed: full, selective)"), bad);
    }
}
