package io.qlora4j.model.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A written config.json carries each dtype and RoPE fact in the spelling of transformers 4.x (rope_theta,
 * rope_scaling, partial_rotary_factor, torch_dtype at the top) and 5.x (rope_parameters, dtype), whichever the
 * source used.
 */
class ConfigSpellingsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private ObjectNode written(String config) throws Exception {
        ModelFiles.writeConfig(dir, (ObjectNode) JSON.readTree(config));
        return (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
    }

    @Test
    void transformers5ConfigGainsTheLegacyKeys() throws Exception {
        ObjectNode llama31 = written("{\"model_type\": \"llama\", \"dtype\": \"bfloat16\", \"rope_parameters\":"
                + " {\"rope_type\": \"llama3\", \"rope_theta\": 500000.0, \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                + " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}}");
        assertEquals("bfloat16", llama31.get("torch_dtype").asText());
        assertEquals(500000.0, llama31.get("rope_theta").asDouble());
        assertEquals(JSON.readTree("{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0,"
                + " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}"), llama31.get("rope_scaling"));

        ObjectNode qwen = written("{\"dtype\": \"float16\", \"rope_parameters\": {\"rope_type\": \"default\","
                + " \"rope_theta\": 1000000.0}}");
        assertEquals(1000000.0, qwen.get("rope_theta").asDouble());
        assertEquals(true, qwen.get("rope_scaling").isNull());

        // Phi-3 longrope: partial rotary and the original length at the top, three fields in rope_scaling
        ObjectNode phi = written("{\"rope_parameters\": {\"rope_type\": \"longrope\", \"rope_theta\": 10000.0,"
                + " \"partial_rotary_factor\": 0.75, \"original_max_position_embeddings\": 4096,"
                + " \"short_factor\": [1.0], \"long_factor\": [2.0]}}");
        assertEquals(0.75, phi.get("partial_rotary_factor").asDouble());
        assertEquals(4096, phi.get("original_max_position_embeddings").asInt());
        assertEquals(JSON.readTree("{\"rope_type\": \"longrope\", \"short_factor\": [1.0], \"long_factor\": [2.0]}"),
                phi.get("rope_scaling"));
    }

    @Test
    void legacyConfigGainsRopeParametersAndDtype() throws Exception {
        ObjectNode mistral = written("{\"torch_dtype\": \"bfloat16\", \"rope_theta\": 1000000.0, \"rope_scaling\": null}");
        assertEquals("bfloat16", mistral.get("dtype").asText());
        assertEquals(JSON.readTree("{\"rope_type\": \"default\", \"rope_theta\": 1000000.0}"),
                mistral.get("rope_parameters"));
        ObjectNode linear = written("{\"rope_theta\": 10000.0, \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}");
        assertEquals(JSON.readTree("{\"rope_type\": \"linear\", \"rope_theta\": 10000.0, \"factor\": 2.0}"),
                linear.get("rope_parameters"));
        assertEquals(JSON.readTree("{\"type\": \"linear\", \"factor\": 2.0}"), linear.get("rope_scaling"));
    }

    @Test
    void keysAlreadyGivenInBothSpellingsAreKept() throws Exception {
        String both = "{\"torch_dtype\": \"float32\", \"dtype\": \"float32\", \"rope_theta\": 10000.0, \"rope_scaling\":"
                + " null, \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 10000.0}}";
        assertEquals(JSON.readTree(both), written(both));
    }
}
