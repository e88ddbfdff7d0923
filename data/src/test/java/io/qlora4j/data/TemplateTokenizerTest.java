package io.qlora4j.data;

import static io.qlora4j.data.TinyTokenizer.ids;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.TokenizerFile;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

class TemplateTokenizerTest {

    @TempDir
    Path dir;

    @Test
    void encodeAddsNoSpecialTokensAndNeverTruncates() throws Exception {
        try (TemplateTokenizer tokenizer = TemplateTokenizer.open(TinyTokenizer.writeLlamaLike(dir))) {
            assertArrayEquals(ids("hi", "there", "</s>", "\n", "Assistant", ":"),
                    tokenizer.encode("hi there</s>\nAssistant:"));
            String long600 = "hi ".repeat(600);
            assertEquals(600, tokenizer.encode(long600).length);
            assertEquals(0, tokenizer.encode("").length);
        }
    }

    @Test
    void specialTokensComeFromTokenizerConfigAndPadFallsBackToEos() throws Exception {
        try (TemplateTokenizer tokenizer = TemplateTokenizer.open(TinyTokenizer.writeLlamaLike(dir))) {
            assertEquals(1, tokenizer.bosId());
            assertEquals(2, tokenizer.eosId());
            assertEquals("</s>", tokenizer.eosToken());
            assertEquals(2, tokenizer.padId());
        }
        TinyTokenizer.write(dir, Map.of("eos_token", "</s>", "pad_token", "<pad>"));
        try (TemplateTokenizer tokenizer = TemplateTokenizer.open(dir.resolve("tokenizer.json"))) {
            assertEquals(-1, tokenizer.bosId());
            assertEquals(0, tokenizer.padId());
        }
    }

    @Test
    void eosComesFromGenerationConfigWhenTokenizerConfigHasNone() throws Exception {
        TinyTokenizer.write(dir, Map.of());
        new ObjectMapper().writeValue(dir.resolve("generation_config.json").toFile(),
                Map.of("bos_token_id", 4, "eos_token_id", new int[] {7, 9}));
        try (TemplateTokenizer tokenizer = TemplateTokenizer.open(dir)) {
            assertEquals(4, tokenizer.bosId());
            assertEquals(7, tokenizer.eosId());
            assertEquals("<|eot_id|>", tokenizer.eosToken());
        }
    }

    /** A special token tokenizer_config.json names that the tokenizer lacks is refused naming the key and token. */
    @Test
    void aSpecialTokenTheTokenizerLacksIsRefusedByName() throws Exception {
        TinyTokenizer.write(dir, Map.of("eos_token", "<nope>"));
        DataException e = assertThrows(DataException.class, () -> TemplateTokenizer.open(dir).close());
        assertEquals(dir.resolve("tokenizer_config.json") + ": eos_token '<nope>' is not a token of "
                + dir.resolve("tokenizer.json"), e.getMessage());
        // a pad the tokenizer lacks is none: pad falls back to eos, and padding is never a label
        TinyTokenizer.write(dir, Map.of("eos_token", "</s>", "pad_token", "<nope>"));
        try (TemplateTokenizer tokenizer = TemplateTokenizer.open(dir)) {
            assertEquals(tokenizer.eosId(), tokenizer.padId());
        }
    }

    /**
     * A special token that is neither a string nor an AddedToken object with a string content, or a generation config
     * that is no object, is refused naming the file (and key), not read as unset or as the text of a number.
     */
    @Test
    void aSpecialTokenOrConfigOfTheWrongTypeIsRefusedByName() throws Exception {
        Path config = dir.resolve("tokenizer_config.json");
        for (Object eos : new Object[] {5, Map.of("content", 5), List.of("</s>")}) {
            TinyTokenizer.write(dir, Map.of("eos_token", eos));
            DataException e = assertThrows(DataException.class, () -> TemplateTokenizer.open(dir).close());
            assertEquals(config + ": eos_token must be a string or an object with a string \"content\", found "
                    + new ObjectMapper().writeValueAsString(eos), e.getMessage());
        }
        TinyTokenizer.write(dir, Map.of("pad_token", Map.of("content", "</s>")));
        Files.writeString(dir.resolve("generation_config.json"), "[2]");
        DataException e = assertThrows(DataException.class, () -> TemplateTokenizer.open(dir).close());
        assertEquals(dir.resolve("generation_config.json") + ": expected a JSON object", e.getMessage());
    }

    @Test
    void wrapRefusesTheDefaultTruncatingTokenizer() throws Exception {
        TinyTokenizer.writeLlamaLike(dir);
        try (HuggingFaceTokenizer truncating = HuggingFaceTokenizer.newInstance(dir.resolve("tokenizer.json"))) {
            DataException e = assertThrows(DataException.class, () -> TemplateTokenizer.wrap(truncating, dir));
            assertTrue(e.getMessage().contains("optTruncation(false)"), e.getMessage());
        }
    }

    @Test
    void templatesThatReplaceEosUseTheirFirstStopWord() throws Exception {
        try (TemplateTokenizer tokenizer = TemplateTokenizer.open(TinyTokenizer.writeLlamaLike(dir))) {
            TemplateTokenizer llama3 = ChatTemplate.named("llama3").bind(tokenizer);
            assertEquals(ids("<|eot_id|>")[0], llama3.eosId());
            assertEquals(ids("<|eot_id|>")[0], llama3.padId());
            assertEquals(2, ChatTemplate.named("default").bind(tokenizer).eosId());
        }
    }

    @Test
    void aLlama2TokenizerEncodesEachSlotAsTransformers5LoadsIt() throws Exception {
        // model's Llama-2-style SentencePiece fixture (<unk> <s> </s> ▁ h i ▁h hi ▁hi) with Llama 2's
        // tokenizer_config.json; expected ids: transformers 5.12.1, AutoTokenizer.from_pretrained of the same files,
        // encode(text, add_special_tokens=False), as LLaMA-Factory encodes a slot such as Mistral's " {{content}}"
        try (InputStream in = TokenizerFile.class.getResourceAsStream("llama-sentencepiece-tokenizer.json")) {
            Files.copy(in, dir.resolve("tokenizer.json"));
        }
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\","
                + " \"unk_token\": \"<unk>\", \"tokenizer_class\": \"LlamaTokenizer\", \"legacy\": false}");
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"llama\"}");
        try (TemplateTokenizer tokenizer = TemplateTokenizer.open(dir)) {
            assertArrayEquals(new int[] {8}, tokenizer.encode(" hi")); // tokenizer.json alone: [3, 8]
            assertArrayEquals(new int[] {8, 2, 7}, tokenizer.encode("hi</s>hi")); // tokenizer.json alone: [8, 2, 8]
            assertEquals(1, tokenizer.bosId());
        }
    }
}
