package io.qlora4j.model.format;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.ModelException;
import io.qlora4j.quant.QuantType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The registry: job keys and checkpoint configs to formats, and every refusal one line naming the key. */
class BaseFormatsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private static BaseFormat keys(String method, Integer bits, Map<String, Object> options) throws ModelException {
        return BaseFormats.fromKeys(new FormatKeys(method, bits, options));
    }

    @Test
    void noBitWidthIsDenseWhateverTheMethod() throws Exception {
        assertSame(BaseFormats.DENSE, keys("bnb", null, Map.of()));
        assertSame(BaseFormats.DENSE, keys(null, null, Map.of("quantization_type", "fp4")));
    }

    @Test
    void bothBitsandbytesSpellingsChooseTheFourBitFormatWithItsOptions() throws Exception {
        assertEquals(Bnb4bitFormat.QLORA, keys(null, 4, Map.of()), "LLaMA-Factory's defaults: NF4, DQ, blocksize 64");
        BaseFormat fp4 = keys("bitsandbytes", 4, Map.of("quantization_type", "FP4", "double_quantization", "false",
                "quantization_blocksize", 128));
        assertEquals(new Bnb4bitFormat(QuantType.FP4, 128, false), fp4);
        assertEquals(fp4, BaseFormats.fromKeys(FormatKeys.of(fp4.keys())), "a format's keys choose it again");
        assertEquals(List.of("quantization_method", "quantization_bit"), List.copyOf(fp4.keys().keySet()).subList(0, 2));
    }

    @Test
    void aBitWidthNoToolOffersForTheMethodIsRefusedNamingTheAllowedOnes() {
        ModelException e = assertThrows(ModelException.class, () -> keys("bnb", 3, Map.of()));
        assertEquals("quantization_bit 3 is not supported by quantization_method bnb (allowed: 4, 8)", e.getMessage());
    }

    @Test
    void everyMethodOfLlamaFactorysOnTheFlyMenuIsImplementedAndAnUnknownOneIsRefusedListingThem() {
        assertEquals(List.of(), BaseFormats.plannedMethods(), "bnb/bitsandbytes 4 and 8, hqq 1-6 and 8, eetq 8");
        ModelException e = assertThrows(ModelException.class, () -> keys("nf4", 4, Map.of()));
        assertEquals("quantization_method 'nf4' is not a base-format method (implemented: bnb, bitsandbytes, cvxq, hqq,"
                + " eetq, aqlm, gptq, awq)", e.getMessage());
    }

    @Test
    void aBadOptionValueIsOneLineNamingTheOption() {
        ModelException e = assertThrows(ModelException.class,
                () -> keys("bnb", 4, Map.of("quantization_blocksize", 100)));
        assertTrue(e.getMessage().startsWith("quantization_blocksize '100' is not one of 32, 64"), e.getMessage());
    }

    @Test
    void transformersFourBitConfigsAreRecognisedWithTheirDefaults() throws Exception {
        JsonNode nf4 = JSON.readTree("{\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true,"
                + " \"bnb_4bit_quant_type\": \"nf4\", \"bnb_4bit_use_double_quant\": true}");
        assertEquals(Bnb4bitFormat.QLORA, BaseFormats.fromQuantizationConfig(nf4, "config.json"));
        JsonNode older = JSON.readTree("{\"quant_method\": \"bitsandbytes\", \"_load_in_4bit\": true}");
        assertEquals(new Bnb4bitFormat(QuantType.FP4, 64, false), BaseFormats.fromQuantizationConfig(older, "c"),
                "transformers' BitsAndBytesConfig defaults: fp4, no double quantization");
    }

    /** 4-bit and 8-bit at once is no checkpoint: refused naming both flags, not read as the 4-bit one. */
    @Test
    void aBitsandbytesConfigLoadingInFourAndEightBitsIsRefusedNamingBoth() throws Exception {
        assertEquals(dir.resolve("config.json") + ": quantization_config: load_in_4bit and load_in_8bit are both true;"
                + " a bitsandbytes checkpoint is stored in one of them",
                storedRefusal("{\"quant_method\": \"bitsandbytes\", \"_load_in_4bit\": true, \"load_in_8bit\": true}"));
    }

    @Test
    void aQuantMethodNoRegistrationReadsIsRefusedNamingItAndWhatIsSupported() throws Exception {
        assertEquals(dir.resolve("config.json") + ": quantization_config quant_method 'compressed-tensors' is not"
                + " supported (qlora4j loads pre-quantized bitsandbytes 4-bit (NF4, FP4), bitsandbytes 8-bit (LLM.int8),"
                + " CVXQ, HQQ, AQLM, GPTQ, AWQ)", storedRefusal("{\"quant_method\": \"compressed-tensors\"}"));
    }

    /** The message {@link BaseFormats#stored} refuses a Llama config.json with {@code quantizationConfig} with. */
    private String storedRefusal(String quantizationConfig) throws Exception {
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"llama\", \"quantization_config\": "
                + quantizationConfig + "}");
        return assertThrows(ModelException.class, () -> BaseFormats.stored(dir)).getMessage();
    }

    @Test
    void aFloatCheckpointTakesTheRequestedFormatAndAPrequantizedOneItsOwn() throws Exception {
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"llama\"}");
        assertNull(BaseFormats.stored(dir));
        assertSame(BaseFormats.QLORA, BaseFormats.forModel(dir, BaseFormats.QLORA));
        ObjectMapper json = new ObjectMapper();
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"llama\", \"quantization_config\": "
                + json.writeValueAsString(new Bnb4bitFormat(QuantType.FP4, 64, false).quantizationConfig("bfloat16")) + "}");
        BaseFormat fp4 = new Bnb4bitFormat(QuantType.FP4, 64, false);
        assertEquals(fp4, BaseFormats.forModel(dir, BaseFormats.DENSE));
        assertEquals(fp4, BaseFormats.forModel(dir, BaseFormats.QLORA), "same method and bits: the stored one wins");
    }

    @Test
    void theMenuListsADefaultFormatPerRegisteredMethodAndBitWidth() {
        assertTrue(BaseFormats.menu().contains(Bnb4bitFormat.QLORA), BaseFormats.menu().toString());
    }
}
