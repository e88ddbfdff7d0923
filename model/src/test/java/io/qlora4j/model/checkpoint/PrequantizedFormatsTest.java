package io.qlora4j.model.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.decoder.DecoderBlock;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.llama.ReferenceEval;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** AQLM, GPTQ and AWQ checkpoints in the exact Hugging Face layouts load into the model they stand for. */
class PrequantizedFormatsTest {
    @TempDir
    Path dir;

    /** Every block linear lends exactly the fixture's dense weight, and the logits match a float64 Llama. */
    private static void loadsAsTheDenseModel(PrequantizedModels.Written w, String described) throws Exception {
        BaseFormat stored = BaseFormats.stored(w.dir());
        assertEquals(described, stored.describe());
        DecoderConfig config = ModelFamilies.read(w.dir().resolve("config.json"));
        int[] ids = {1, 7, 3, 49, 12, 0, 33};
        double[][] reference = ReferenceEval.logits(config, w.weights(), ids);
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = ModelLoader.builder().build().load(w.dir(), m)) {
            for (String name : config.linearNames()) {
                BaseLinear layer = (BaseLinear) model.block(0).linear(name);
                assertTrue(layer instanceof QuantizedLinear, name);
                float[] lent = layer.withWeight(DataType.FLOAT32, NDArray::toFloatArray);
                assertArrayEquals(w.weights().get("model.layers.0." + name + ".weight"), lent, name);
            }
            long[] longIds = new long[ids.length];
            for (int i = 0; i < ids.length; i++) {
                longIds[i] = ids[i];
            }
            float[] logits = model.forward(m.create(longIds, new Shape(1, ids.length)), null).toFloatArray();
            double maxDiff = 0;
            double maxRef = 0;
            for (int i = 0; i < ids.length; i++) {
                for (int v = 0; v < TinyModels.VOCAB; v++) {
                    maxDiff = Math.max(maxDiff, Math.abs(logits[i * TinyModels.VOCAB + v] - reference[i][v]));
                    maxRef = Math.max(maxRef, Math.abs(reference[i][v]));
                }
            }
            assertTrue(maxDiff <= 1e-4 * maxRef, "max logit difference " + maxDiff + " of " + maxRef);
        }
    }

    @Test
    void aqlmOneBySixteenWithNegativeInt16CodesLoadsAsItsDecodedWeights() throws Exception {
        loadsAsTheDenseModel(PrequantizedModels.aqlm(dir, 1, 16, 8), "AQLM 1x16 g8");
    }

    @Test
    void aqlmTwoByEightInt8CodesLoadAsTheirDecodedWeights() throws Exception {
        loadsAsTheDenseModel(PrequantizedModels.aqlm(dir, 2, 8, 8), "AQLM 2x8 g8");
    }

    @Test
    void gptqSymmetricV1LoadsAsItsDequantizedWeights() throws Exception {
        loadsAsTheDenseModel(PrequantizedModels.gptq(dir, 4, 32, false, true, true), "GPTQ 4-bit, group 32, symmetric, gptq");
    }

    @Test
    void gptqAsymmetricActOrderLoadsThroughItsGroupIndex() throws Exception {
        loadsAsTheDenseModel(PrequantizedModels.gptq(dir, 4, 32, true, false, true), "GPTQ 4-bit, group 32, act-order, gptq");
        loadsAsTheDenseModel(PrequantizedModels.gptq(dir.resolve("v2"), 3, 32, true, false, false),
                "GPTQ 3-bit, group 32, act-order, gptq_v2");
    }

    /**
     * Without g_idx a column's group is its index over group_size, so a group_size that does not give the scales'
     * group count is refused naming it, not read with groups left out or the last one stretched; 0 and -2 name no
     * grouping at all.
     */
    @Test
    void gptqWithoutGroupIndexRefusesAGroupSizeThatDisagreesWithItsScales() throws Exception {
        Path model = PrequantizedModels.gptq(dir, 4, 32, false, true, true).dir();
        String scales = "model.layers.0.self_attn.q_proj.scales";
        try (SafetensorsReader r = SafetensorsReader.open(model)) {
            for (TensorInfo t : r.tensors()) {
                if (t.name().endsWith(".g_idx")) {
                    replace(model, t.name(), null, null, null);
                }
            }
        }
        String config = Files.readString(model.resolve("config.json"));
        Files.writeString(model.resolve("config.json"), config.replace("\"group_size\": 32", "\"group_size\": 64"));
        assertEquals(model.resolve("model.safetensors") + ": tensor " + scales + " has shape [2, 64], expected [1, 64]"
                + " for 4-bit codes of 64 x 64 in groups of 64 (group_size; no g_idx)", loadFails(model).getMessage());
        Files.writeString(model.resolve("config.json"), config.replace("\"group_size\": 32", "\"group_size\": -1"));
        assertEquals(model.resolve("model.safetensors") + ": tensor " + scales + " has shape [2, 64], expected [1, 64]"
                + " for 4-bit codes of 64 x 64 in groups of -1 (group_size; no g_idx)", loadFails(model).getMessage());
        for (String bad : new String[] {"0", "-2"}) {
            Files.writeString(model.resolve("config.json"), config.replace("\"group_size\": 32", "\"group_size\": " + bad));
            assertEquals(model.resolve("config.json") + ": quantization_config: group_size " + bad + " is neither -1"
                    + " (one group) nor a positive number of input columns", loadFails(model).getMessage());
        }
        Files.writeString(model.resolve("config.json"), config);
        loadsAsTheDenseModel(new PrequantizedModels.Written(model, PrequantizedModels.gptq(dir.resolve("same"), 4, 32,
                false, true, true).weights()), "GPTQ 4-bit, group 32, symmetric, gptq");
    }

    @Test
    void awqGemmLoadsAsItsDequantizedWeights() throws Exception {
        loadsAsTheDenseModel(PrequantizedModels.awq(dir, 32), "AWQ 4-bit gemm, group 32");
    }

    @Test
    void aqlmBitsPerParameterFollowTheScheme() throws Exception {
        BaseFormat f = BaseFormats.stored(PrequantizedModels.aqlm(dir, 2, 8, 8).dir());
        // codes 2 bits, codebooks 2 x 256 x 8 fp16, one fp16 scale per row
        assertEquals(2 + 2 * 256 * 8 * 16.0 / (4096 * 4096) + 16.0 / 4096, f.bitsPerParameter(new long[] {4096, 4096}),
                1e-9);
    }

    private static ModelException loadFails(Path model) {
        try (NDManager m = NDManager.newBaseManager()) {
            return assertThrows(ModelException.class, () -> ModelLoader.builder().build().load(model, m));
        }
    }

    /** Rewrites one tensor of the checkpoint (name, dtype, shape, bytes) or drops it (null dtype). */
    private static void replace(Path model, String name, DType dtype, long[] shape, byte[] data) throws Exception {
        Path copy = model.resolveSibling(model.getFileName() + "-edited");
        Files.createDirectories(copy);
        try (SafetensorsReader r = SafetensorsReader.open(model); SafetensorsWriter w = SafetensorsWriter.builder(copy).build()) {
            for (TensorInfo t : r.tensors()) {
                if (!t.name().equals(name)) {
                    w.addFrom(r, t.name());
                } else if (dtype != null) {
                    w.addBytes(name, dtype, shape, data);
                }
            }
        }
        Files.move(copy.resolve("model.safetensors"), model.resolve("model.safetensors"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }

    @Test
    void aqlmCodesOutOfRangeShapesOffTheGroupsAndMissingCodebooksAreNamed() throws Exception {
        Path model = PrequantizedModels.aqlm(dir, 2, 8, 8).dir();
        String codes = "model.layers.0.mlp.up_proj.codes";
        // 8-bit codes stored in int16: 300 is no code of a 256-entry codebook
        ByteBuffer big = ByteBuffer.allocate(96 * 8 * 2 * 2).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        big.putShort(0, (short) 300);
        replace(model, codes, DType.I16, new long[] {96, 8, 2}, big.array());
        assertTrue(loadFails(model).getMessage().endsWith(codes + ": code 300 at position 0 is out of range for "
                + "256-entry codebooks (nbits_per_codebook 8: expected -128 to 255)"), loadFails(model).getMessage());
        // codebooks whose groups disagree with in_group_size 8
        String cb = "model.layers.0.mlp.up_proj.codebooks";
        replace(model, cb, DType.F16, new long[] {2, 256, 1, 4}, new byte[2 * 256 * 4 * 2]);
        assertTrue(loadFails(model).getMessage().endsWith("tensor " + cb + " has shape [2, 256, 1, 4], expected "
                + "[2, 256, 1, 8] for quantization_config (num_codebooks 2, nbits_per_codebook 8, out_group_size 1, "
                + "in_group_size 8)"), loadFails(model).getMessage());
        replace(model, cb, null, null, null);
        assertEquals("missing tensor " + cb + " (AQLM stores it for every quantized linear)", loadFails(model).getMessage());
    }

    @Test
    void layoutsQlora4jDoesNotReadAreRefusedByTheirField() throws Exception {
        String[][] cases = {
            {"gptq", "\"bits\": 4, \"checkpoint_format\": \"marlin\"", "checkpoint_format marlin is not implemented (qlora4j reads gptq and gptq_v2)"},
            {"gptq", "\"bits\": 4, \"checkpoint_format\": \"bitblas\"", "checkpoint_format bitblas is not implemented (qlora4j reads gptq and gptq_v2)"},
            {"gptq", "\"bits\": 5", "bits 5 is not implemented for gptq (qlora4j reads 2, 3, 4 and 8)"},
            {"gptq", "\"group_size\": 128", "bits is missing (transformers' GPTQConfig requires it)"},
            {"gptq", "\"bits\": 4, \"lm_head\": true", "lm_head true (a quantized lm_head) is not implemented"},
            {"awq", "\"version\": \"gemv\"", "version gemv is not implemented (qlora4j reads AWQ gemm)"},
            {"awq", "\"zero_point\": false", "zero_point false is not implemented (AWQ gemm stores zero points)"},
            {"aqlm", "\"nbits_per_codebook\": 20", "nbits_per_codebook 20 is not implemented (qlora4j reads 1 to 16)"}};
        refusedByTheirField(cases);
    }

    /** A fractional or quoted number is refused by its field, not truncated or parsed into what the config does not say. */
    @Test
    void quantizationConfigIntegersThatAreNoWholeNumbersAreRefusedByTheirField() throws Exception {
        refusedByTheirField(new String[][] {
            {"gptq", "\"bits\": 4.5", "bits 4.5 is not a whole number"},
            {"gptq", "\"bits\": 4, \"group_size\": \"32\"", "group_size \"32\" is not a whole number"},
            {"awq", "\"bits\": \"4\"", "bits \"4\" is not a whole number"},
            {"awq", "\"group_size\": 32.5", "group_size 32.5 is not a whole number"},
            {"aqlm", "\"nbits_per_codebook\": 8.5", "nbits_per_codebook 8.5 is not a whole number"},
            {"aqlm", "\"num_codebooks\": \"2\"", "num_codebooks \"2\" is not a whole number"}});
    }

    /** Each case (method, extra config fields, message): config.json's quantization_config refused with that message. */
    private void refusedByTheirField(String[][] cases) throws Exception {
        for (String[] c : cases) {
            Path model = dir.resolve(c[0] + c[1].hashCode());
            Files.createDirectories(model);
            Files.writeString(model.resolve("config.json"), "{\"model_type\": \"llama\", \"quantization_config\": {"
                    + "\"quant_method\": \"" + c[0] + "\", " + c[1] + "}}");
            ModelException e = assertThrows(ModelException.class, () -> BaseFormats.stored(model));
            assertEquals(model.resolve("config.json") + ": quantization_config: " + c[2], e.getMessage());
        }
    }

    /**
     * A float checkpoint whose config.json carries a quantization_config (copied from a quantized model, say) is
     * refused when loaded: it would run in float while every record of the run called it quantized.
     */
    @Test
    void aQuantizationConfigOverFloatWeightsIsRefused() throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        String config = Files.readString(model.resolve("config.json"));
        Files.writeString(model.resolve("config.json"), config.substring(0, config.lastIndexOf('}'))
                + ", \"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 128}}");
        try (NDManager m = NDManager.newBaseManager()) {
            ModelException e = assertThrows(ModelException.class, () -> ModelLoader.builder().build().load(model, m));
            assertEquals(model.resolve("config.json") + ": quantization_config says the linear layers are stored in "
                    + BaseFormats.stored(model).describe() + ", but the checkpoint stores none that way"
                    + " (model.layers.0.self_attn.q_proj has a float weight); remove quantization_config for a float"
                    + " checkpoint, or point to the quantized one", e.getMessage());
        }
        for (String[] bad : new String[][] {{"\"bnb\"", "quantization_config must be an object with quant_method,"
                + " not \"bnb\""}, {"{\"bits\": 4}", "quantization_config has no quant_method (a string such as"
                + " bitsandbytes, gptq, awq)"}}) {
            Files.writeString(model.resolve("config.json"), config.substring(0, config.lastIndexOf('}'))
                    + ", \"quantization_config\": " + bad[0] + "}");
            ModelException e = assertThrows(ModelException.class, () -> BaseFormats.stored(model));
            assertEquals(model.resolve("config.json") + ": " + bad[1], e.getMessage());
        }
    }
}
