package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.llama.LlamaFamily;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.decoder.DecoderConfig;
import org.junit.jupiter.api.Test;

class QloraMemoryEstimateTest {
    @Test
    void parameterCountsMatchThePublishedModels() {
        // Published totals: Llama-2-7B 6,738,415,616; TinyLlama-1.1B 1,100,048,384; Llama-3-8B 8,030,261,248.
        DecoderConfig llama2 = LlamaFamily.builder(4096, 11008, 32, 32, 32000).build();
        assertEquals(6_738_415_616L, QloraMemoryEstimate.of(llama2, BaseFormats.QLORA, 8, 512, 1, 4).parameters());
        DecoderConfig tiny = LlamaFamily.builder(2048, 5632, 22, 32, 32000).optNumKeyValueHeads(4).build();
        assertEquals(1_100_048_384L, QloraMemoryEstimate.of(tiny, BaseFormats.QLORA, 8, 512, 1, 4).parameters());
        DecoderConfig llama3 = LlamaFamily.builder(4096, 14336, 32, 32, 128256).optNumKeyValueHeads(8).build();
        assertEquals(8_030_261_248L, QloraMemoryEstimate.of(llama3, BaseFormats.QLORA, 8, 512, 1, 4).parameters());
    }

    @Test
    void llama2SevenBBaseIsAboutFourPointOneTwoSevenBitsPerLinearParameter() {
        DecoderConfig llama2 = LlamaFamily.builder(4096, 11008, 32, 32, 32000).build();
        QloraMemoryEstimate e = QloraMemoryEstimate.of(llama2, BaseFormats.QLORA, 64, 512, 1, 2);
        // 4 + 8/64 + 32/(64*256) bits per parameter = 4.127 (FORMATS.md section 3)
        assertEquals(4.127, e.baseBytes() * 8.0 / e.linearParameters(), 0.0005);
        // by hand, r=64 on all 7 linears: 64 * (4 * 8192 + 3 * 15104) per layer * 32 layers = 159,907,840
        assertEquals(159_907_840L, e.loraParameters());
        assertEquals(e.loraParameters() * 16, e.loraBytes());
        // float32 checkpoint: embed_tokens and lm_head (2 x 32000 x 4096) and 65 norms of 4096 in the compute dtype
        assertEquals((2L * 32000 * 4096 + 65 * 4096) * 2, e.denseBytes());
        // bf16 checkpoint: the two tables in float16 codes plus a float32 scale per row, whatever the compute dtype
        DecoderConfig bf16 = LlamaFamily.builder(4096, 11008, 32, 32, 32000).optTorchDtype("bfloat16").build();
        assertEquals(2L * 32000 * (2 * 4096 + 4) + 65 * 4096 * 4, QloraMemoryEstimate.of(bf16, BaseFormats.QLORA, 64, 512, 1, 4).denseBytes());
    }

    @Test
    void hugeBatchTimesCutoffIsRefusedInsteadOfOverflowingToNegativeBytes() {
        DecoderConfig llama2 = LlamaFamily.builder(4096, 11008, 32, 32, 32000).build();
        // 2 x 2^28 tokens: attention scores alone are 2 * 32 heads * 2^56 * 12 bytes, past 2^63
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> QloraMemoryEstimate.of(llama2, BaseFormats.QLORA, 8, 1 << 28, 2, 4));
        assertEquals("a batch of 2 x 268435456 tokens needs more than 2^63 bytes of activations; nothing can run it",
                e.getMessage());
        // 64 x 32768 still fits: every part positive, the total their sum
        QloraMemoryEstimate big = QloraMemoryEstimate.of(llama2, BaseFormats.QLORA, 8, 32768, 64, 4);
        assertEquals(64L * 32 * 32768 * 32768 * 12, big.activationBytes() - 32L * 64 * 32768 * 4096 * 4
                - 64L * 32768 * 11008 * 16 - 11008L * 4096 * 8 - 64L * 32768 * 32000 * 8);
        assertTrue(big.totalBytes() > big.activationBytes());
    }
}
