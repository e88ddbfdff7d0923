package io.qlora4j.model.family;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.MlpActivation;
import io.qlora4j.model.decoder.RmsNorm;
import io.qlora4j.model.decoder.RopeScaling;
import io.qlora4j.model.gemma.GemmaFamily;
import io.qlora4j.model.gemma2.Gemma2Family;
import io.qlora4j.model.phi3.Phi3Family;
import io.qlora4j.model.qwen2.Qwen2Family;
import io.qlora4j.model.qwen3.Qwen3Family;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each family's config.json: the class defaults for absent keys, and what qlora4j writes reads back equal. */
class FamilyConfigTest {
    private static final String SIZES = "\"hidden_size\": 64, \"intermediate_size\": 96, \"num_hidden_layers\": 4,"
            + " \"num_attention_heads\": 4, \"vocab_size\": 100";

    @TempDir
    Path dir;

    private static DecoderConfig parse(String modelType, String more) throws ModelException {
        return ModelFamilies.parse("{\"model_type\": \"" + modelType + "\", " + SIZES + more + "}", "config.json");
    }

    @Test
    void absentKeysTakeEachConfigClassDefault() throws ModelException {
        DecoderConfig qwen2 = parse("qwen2", ", \"num_key_value_heads\": 4");
        assertEquals(Qwen2Family.QKV_BIASES, qwen2.biases());
        assertEquals(List.of(false, false, false, false), qwen2.slidingLayers());
        assertEquals(32768, qwen2.maxPositionEmbeddings());
        assertEquals(false, qwen2.tieWordEmbeddings());
        assertEquals(2, parse("qwen2", ", \"num_key_value_heads\": 2, \"use_sliding_window\": true, \"sliding_window\": 8,"
                + " \"max_window_layers\": 2").slidingLayers().indexOf(true));
        DecoderConfig qwen3 = parse("qwen3", ", \"num_key_value_heads\": 4");
        assertEquals(128, qwen3.headDim());
        assertEquals(true, qwen3.parts().qkNorm());
        assertEquals(Set.of(), qwen3.biases());
        DecoderConfig gemma = parse("gemma", ", \"num_key_value_heads\": 1");
        assertEquals(256, gemma.headDim());
        assertEquals(true, gemma.tieWordEmbeddings());
        assertEquals(RmsNorm.OFFSET, gemma.parts().norm());
        assertEquals(MlpActivation.GELU_TANH, gemma.parts().activation());
        assertEquals(8192, gemma.maxPositionEmbeddings());
        DecoderConfig gemma2 = parse("gemma2", ", \"num_key_value_heads\": 2");
        assertEquals(256.0, gemma2.parts().queryPreAttnScalar());
        assertEquals(50.0, gemma2.parts().attnLogitSoftcapping());
        assertEquals(30.0, gemma2.parts().finalLogitSoftcapping());
        assertEquals(4096, gemma2.slidingWindow());
        assertEquals(List.of(true, false, true, false), gemma2.slidingLayers());
        DecoderConfig phi3 = parse("phi3", "");
        assertEquals(1e-5, phi3.rmsNormEps());
        assertEquals(4, phi3.numKeyValueHeads());
        assertNull(phi3.slidingWindow());
        assertEquals(List.of("self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj"),
                phi3.linearNames());
        assertEquals(4, parse("mistral", ", \"num_key_value_heads\": 4").numKeyValueHeads());
        // Qwen2's class default is 32 key/value heads, which 4 attention heads cannot share
        assertEquals("config.json: num_attention_heads 4 is not a multiple of num_key_value_heads 32",
                assertThrows(ModelException.class, () -> parse("qwen2", "")).getMessage());
    }

    /**
     * transformers' standardize_rope_params: for llama3 and longrope a top-level original_max_position_embeddings wins
     * over the rope object's, and Phi3Config's own field (default 4096) always stands there.
     */
    @Test
    void aTopLevelOriginalContextWinsOverTheRopeObjects() throws ModelException {
        String factors = "\"short_factor\": [1, 1, 1, 1, 1, 1, 1, 1], \"long_factor\": [2, 2, 2, 2, 2, 2, 2, 2]";
        String rope = ", \"max_position_embeddings\": 128, \"rope_parameters\": {\"rope_type\": \"longrope\","
                + " \"original_max_position_embeddings\": 32, " + factors + "}";
        assertEquals(64, parse("llama", rope + ", \"original_max_position_embeddings\": 64").ropeScaling()
                .originalMaxPositionEmbeddings());
        assertEquals(32, parse("llama", rope).ropeScaling().originalMaxPositionEmbeddings());
        assertEquals(4096, parse("phi3", rope).ropeScaling().originalMaxPositionEmbeddings());
        assertEquals(64, parse("phi3", rope + ", \"original_max_position_embeddings\": 64").ropeScaling()
                .originalMaxPositionEmbeddings());
        String noOriginal = ", \"max_position_embeddings\": 128, \"rope_parameters\": {\"rope_type\": \"longrope\", "
                + factors + "}";
        assertEquals(128, parse("llama", noOriginal).ropeScaling().originalMaxPositionEmbeddings());
    }

    @Test
    void writtenConfigOfEveryFamilyReadsBackEqual() throws Exception {
        List<DecoderConfig> configs = List.of(
                Qwen2Family.builder(64, 96, 4, 4, 100).optNumKeyValueHeads(2).optSlidingWindow(16)
                        .optSlidingLayers(List.of(false, false, true, true)).optRopeTheta(1e6).build(),
                Qwen3Family.builder(64, 96, 2, 4, 100).optHeadDim(32).optTieWordEmbeddings(true).build(),
                GemmaFamily.builder(64, 96, 2, 4, 100).optNumKeyValueHeads(1).optHeadDim(32).build(),
                Gemma2Family.builder(64, 96, 3, 4, 100).optSlidingWindow(8).optSlidingLayers(List.of(true, false, true))
                        .optParts(Gemma2Family.parts(MlpActivation.GELU, 24, null, 30.0)).build(),
                Phi3Family.builder(64, 96, 2, 4, 100).optPartialRotaryFactor(0.75).optMaxPositionEmbeddings(64)
                        .optRopeScaling(RopeScaling.longrope(4, 16, List.of(1.0, 1.5, 2.0, 2.5, 3.0, 3.5),
                                List.of(2.0, 3.0, 4.0, 5.0, 6.0, 7.0), null)).optSlidingWindow(32).build());
        for (DecoderConfig c : configs) {
            Path file = dir.resolve(c.modelType() + ".json");
            c.write(file);
            assertEquals(c, ModelFamilies.read(file), c.modelType());
        }
    }

    @Test
    void valuesQlora4jLacksAreRefusedByName() {
        assertEquals("config.json: layer_types 'chunked_attention' is not supported (supported: full_attention,"
                + " sliding_attention)", assertThrows(ModelException.class, () -> parse("qwen2",
                ", \"use_sliding_window\": true, \"layer_types\": [\"full_attention\", \"chunked_attention\","
                        + " \"full_attention\", \"full_attention\"]")).getMessage());
        assertEquals("config.json: use_bidirectional_attention 'true' is not supported (supported: false (causal"
                + " attention))", assertThrows(ModelException.class,
                () -> parse("gemma", ", \"use_bidirectional_attention\": true")).getMessage());
        assertEquals("config.json: partial_rotary_factor '0.5' is not supported (supported: 1.0)",
                assertThrows(ModelException.class, () -> parse("qwen3", ", \"partial_rotary_factor\": 0.5")).getMessage());
        assertEquals("config.json: rope_scaling: longrope short_factor and long_factor must have 8 entries (rotated"
                + " features / 2), got 2", assertThrows(ModelException.class, () -> parse("phi3",
                ", \"rope_scaling\": {\"type\": \"su\", \"short_factor\": [1, 2], \"long_factor\": [1, 2]}")).getMessage());
        assertEquals("config.json: hidden_act 'relu' is not supported (supported: silu, swish, gelu, gelu_pytorch_tanh,"
                + " gelu_new)", assertThrows(ModelException.class, () -> parse("llama", ", \"hidden_act\": \"relu\""))
                .getMessage());
    }
}
