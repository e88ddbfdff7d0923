package io.qlora4j.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.RopeScaling;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.mistral.MistralFamily;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaConfigTest {
    private static final String REQUIRED = "\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 172,"
            + " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 100";

    /** Mistral's class default is 8 key/value heads: the 4 query heads need an explicit count. */
    private static final String MISTRAL = REQUIRED.replace("llama", "mistral") + ", \"num_key_value_heads\": 4";

    @TempDir
    Path dir;

    private static DecoderConfig parse(String body) throws ModelException {
        return ModelFamilies.parse("{" + body + "}", "config.json");
    }

    private static String error(String body) {
        return assertThrows(ModelException.class, () -> parse(body)).getMessage();
    }

    @Test
    void absentKeysTakeTransformersDefaults() throws ModelException {
        DecoderConfig c = parse(REQUIRED);
        assertEquals(4, c.numKeyValueHeads());
        assertEquals(16, c.headDim());
        assertEquals(1e-6, c.rmsNormEps());
        assertEquals(10000.0, c.ropeTheta());
        assertNull(c.ropeScaling());
        assertEquals(2048, c.maxPositionEmbeddings());
        assertEquals(false, c.tieWordEmbeddings() || !c.biases().isEmpty());
        assertNull(c.slidingWindow());
        assertNull(c.bosTokenId());
        assertEquals(List.of(), c.eosTokenIds());
        assertNull(c.torchDtype());
    }

    @Test
    void llama31ConfigReadsLlama3ScalingAndEosList() throws ModelException {
        DecoderConfig c = parse(REQUIRED + ", \"num_key_value_heads\": 2, \"rope_theta\": 500000.0,"
                + " \"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
                + " \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"},"
                + " \"bos_token_id\": 128000, \"eos_token_id\": [128001, 128008, 128009], \"torch_dtype\": \"bfloat16\","
                + " \"tie_word_embeddings\": true, \"head_dim\": 32");
        assertEquals(RopeScaling.llama3(8, 1, 4, 8192), c.ropeScaling());
        assertEquals(500000.0, c.ropeTheta());
        assertEquals(2, c.numKeyValueHeads());
        assertEquals(32, c.headDim());
        assertEquals(128000, c.bosTokenId());
        assertEquals(List.of(128001, 128008, 128009), c.eosTokenIds());
        assertEquals("bfloat16", c.torchDtype());
        assertEquals(true, c.tieWordEmbeddings());
    }

    @Test
    void legacyTypeKeyAndSingleEosIdAreRead() throws ModelException {
        DecoderConfig c = parse(REQUIRED + ", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}, \"eos_token_id\": 2");
        assertEquals(RopeScaling.linear(2), c.ropeScaling());
        assertEquals(List.of(2), c.eosTokenIds());
        assertEquals(RopeScaling.dynamic(4),
                parse(REQUIRED + ", \"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": 4}").ropeScaling());
    }

    @Test
    void ropeParametersObjectCarriesThetaAndType() throws ModelException {
        DecoderConfig plain = parse(REQUIRED + ", \"rope_parameters\": {\"rope_theta\": 500000.0, \"rope_type\": \"default\"},"
                + " \"dtype\": \"float16\"");
        assertEquals(500000.0, plain.ropeTheta());
        assertNull(plain.ropeScaling());
        assertEquals("float16", plain.torchDtype());
        DecoderConfig llama3 = parse(REQUIRED + ", \"max_position_embeddings\": 131072, \"rope_parameters\": {\"factor\": 32.0,"
                + " \"high_freq_factor\": 4.0, \"low_freq_factor\": 1.0, \"rope_theta\": 500000.0, \"rope_type\": \"llama3\"}");
        assertEquals(RopeScaling.llama3(32, 1, 4, 131072), llama3.ropeScaling());
        assertEquals(500000.0, llama3.ropeTheta());
    }

    @Test
    void mistralConfigKeepsItsSlidingWindow() throws ModelException {
        DecoderConfig c = parse(MISTRAL + ", \"sliding_window\": 4096,"
                + " \"max_position_embeddings\": 32768");
        assertEquals("mistral", c.modelType());
        assertEquals(4096, c.slidingWindow());
        assertNull(parse(MISTRAL + ", \"sliding_window\": null").slidingWindow());
    }

    @Test
    void writtenConfigReadsBackEqual() throws Exception {
        DecoderConfig c = LlamaFamily.builder(64, 172, 2, 4, 100).optNumKeyValueHeads(2).optHeadDim(24)
                .optRopeScaling(RopeScaling.llama3(8, 1, 4, 8192)).optRopeTheta(500000).optTieWordEmbeddings(true)
                .optBiases(LlamaFamily.biases(true, false)).optBosTokenId(1).optEosTokenIds(List.of(2, 3)).optTorchDtype("bfloat16")
                .optRmsNormEps(1e-5).optMaxPositionEmbeddings(4096).build();
        c.write(dir.resolve("config.json"));
        assertEquals(c, ModelFamilies.read(dir.resolve("config.json")));
        DecoderConfig mistral = MistralFamily.builder(64, 172, 2, 4, 100).optSlidingWindow(16)
                .optRopeScaling(RopeScaling.dynamic(2)).optEosTokenIds(List.of(2)).build();
        mistral.write(dir.resolve("mistral.json"));
        assertEquals(mistral, ModelFamilies.read(dir.resolve("mistral.json")));
    }

    @Test
    void missingFileIsNamed() {
        Path missing = dir.resolve("config.json");
        ModelException e = assertThrows(ModelException.class, () -> ModelFamilies.read(missing));
        assertEquals(missing + ": file not found", e.getMessage());
    }

    @Test
    void invalidJsonNamesFileAndLocation() throws IOException {
        Path file = Files.writeString(dir.resolve("config.json"), "{\"hidden_size\": 64,\n \"vocab_size\": }");
        String message = assertThrows(ModelException.class, () -> ModelFamilies.read(file)).getMessage();
        assertEquals(true, message.startsWith(file + ": not valid JSON at line 2, column "), message);
        assertEquals(false, message.contains("\n"), message);
    }

    @Test
    void missingRequiredKeyIsNamed() {
        assertEquals("config.json: missing required key 'vocab_size'", error(REQUIRED.replace(", \"vocab_size\": 100", "")));
        assertEquals("config.json: missing required key 'model_type'", error(REQUIRED.replace("\"model_type\": \"llama\",", "")));
        assertEquals("config.json: missing required key 'rope_scaling.factor'",
                error(REQUIRED + ", \"rope_scaling\": {\"rope_type\": \"linear\"}"));
    }

    @Test
    void unsupportedRopeTypeIsNamed() {
        assertEquals("config.json: rope_scaling.rope_type 'yarn' is not supported (supported: default, linear,"
                + " dynamic, llama3, longrope)",
                error(REQUIRED + ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}"));
        assertEquals("config.json: rope_parameters.type 'su' is not supported (supported: default, linear, dynamic,"
                + " llama3, longrope)", error(REQUIRED + ", \"rope_parameters\": {\"type\": \"su\"}"));
    }

    @Test
    void unsupportedModelTypeAndActivationAreNamed() {
        assertEquals("config.json: model_type 'gpt2' is not supported (supported: llama, mistral, qwen2, qwen3, gemma,"
                + " gemma2, phi3)", error(REQUIRED.replace("llama", "gpt2")));
        assertEquals("config.json: hidden_act 'relu' is not supported (supported: silu, swish, gelu, gelu_pytorch_tanh,"
                + " gelu_new)", error(REQUIRED + ", \"hidden_act\": \"relu\""));
    }

    @Test
    void wrongTypesAndInconsistentShapesAreNamed() {
        assertEquals("config.json: key 'hidden_size' must be an integer, found \"64\"",
                error(REQUIRED.replace("\"hidden_size\": 64", "\"hidden_size\": \"64\"")));
        assertEquals("config.json: num_attention_heads 4 is not a multiple of num_key_value_heads 3",
                error(REQUIRED + ", \"num_key_value_heads\": 3"));
        assertEquals("config.json: key 'torch_dtype' must name a dtype qlora4j reads (float32, float16, bfloat16,"
                + " float64, float, half, double, auto), found \"float7\"", error(REQUIRED + ", \"torch_dtype\": \"float7\""));
        assertEquals("config.json: num_key_value_heads must be positive, got 0",
                error(REQUIRED + ", \"num_key_value_heads\": 0"));
        assertEquals("config.json: rope_theta must be positive, got -1.5", error(REQUIRED + ", \"rope_theta\": -1.5"));
        assertEquals("config.json: rope_scaling: llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor"
                        + " and original_max_position_embeddings > 0",
                error(REQUIRED + ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 4,"
                        + " \"high_freq_factor\": 1}"));
    }
}
