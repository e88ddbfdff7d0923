package io.qlora4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A LlamaTokenizer's tokenizer.json loads as transformers 5 loads it ({@link TokenizerFile#open}). The fixture is a
 * Llama-2-style SentencePiece BPE (Prepend("▁") + Replace(" ", "▁") normalizer, byte fallback) over the pieces
 * {@code <unk> <s> </s> ▁ h i ▁h hi ▁hi}. Expected ids: transformers 5.12.1,
 * {@code AutoTokenizer.from_pretrained} of the same tokenizer.json beside the tokenizer_config.json and config.json
 * each test writes, then {@code encode(text, add_special_tokens=...)}.
 */
class LlamaPipelineTest {
    @TempDir
    Path dir;

    private Path model(String tokenizerConfig, String config) throws IOException {
        return model("llama-sentencepiece-tokenizer.json", tokenizerConfig, config);
    }

    private Path model(String tokenizerJson, String tokenizerConfig, String config) throws IOException {
        try (InputStream in = LlamaPipelineTest.class.getResourceAsStream(tokenizerJson)) {
            Files.copy(in, dir.resolve("tokenizer.json"));
        }
        Files.writeString(dir.resolve("tokenizer_config.json"), tokenizerConfig);
        Files.writeString(dir.resolve("config.json"), config);
        return dir;
    }

    private static String tokenizerConfig(String entries) {
        return "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"unk_token\": \"<unk>\"" + entries + "}";
    }

    @Test
    void llama2PrependsOneSpaceMarkToTheFirstPieceOnly() throws Exception {
        // Llama 2's tokenizer_config.json: LlamaTokenizer, legacy false: Metaspace with prepend_scheme "first"
        Path model = model(tokenizerConfig(", \"tokenizer_class\": \"LlamaTokenizer\", \"legacy\": false"),
                "{\"model_type\": \"llama\"}");
        try (Tokenizer t = Tokenizer.load(model)) {
            assertArrayEquals(new long[] {8}, t.encode("hi", false));
            assertArrayEquals(new long[] {8}, t.encode(" hi", false)); // the file alone: "▁▁hi", [3, 8]
            assertArrayEquals(new long[] {3, 8}, t.encode("  hi", false));
            assertArrayEquals(new long[] {8, 2, 7}, t.encode("hi</s>hi", false)); // the file alone: [8, 2, 8]
            assertArrayEquals(new long[] {8, 8}, t.encode("hi hi", false));
            assertArrayEquals(new long[] {1, 8}, t.encode(" hi"));
            assertEquals("hi hi", t.decode(new long[] {8, 8}));
        }
    }

    @Test
    void legacyPrependsToEveryPieceAndAddPrefixSpaceFalseToNone() throws Exception {
        Path legacy = model(tokenizerConfig(", \"tokenizer_class\": \"LlamaTokenizer\", \"legacy\": true"),
                "{\"model_type\": \"llama\"}");
        try (Tokenizer t = Tokenizer.load(legacy)) {
            assertArrayEquals(new long[] {8}, t.encode(" hi", false));
            assertArrayEquals(new long[] {8, 2, 8}, t.encode("hi</s>hi", false));
        }
        Files.writeString(dir.resolve("tokenizer_config.json"), tokenizerConfig(
                ", \"tokenizer_class\": \"LlamaTokenizerFast\", \"legacy\": false, \"add_prefix_space\": false"));
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertArrayEquals(new long[] {7}, t.encode("hi", false));
            assertArrayEquals(new long[] {7, 2, 7}, t.encode("hi</s>hi", false));
            assertArrayEquals(new long[] {7, 8}, t.encode("hi hi", false));
        }
    }

    @Test
    void mistralAndTokenizersWithoutTheClassKeepTheFilesPipeline() throws Exception {
        // model_type mistral: transformers 5 loads its generic tokenizer, which takes tokenizer.json as it is
        Path mistral = model(tokenizerConfig(", \"tokenizer_class\": \"LlamaTokenizer\", \"legacy\": true"),
                "{\"model_type\": \"mistral\"}");
        try (Tokenizer t = Tokenizer.load(mistral)) {
            assertArrayEquals(new long[] {3, 8}, t.encode(" hi", false));
            assertArrayEquals(new long[] {3, 3, 8}, t.encode("  hi", false));
        }
        Files.writeString(dir.resolve("tokenizer_config.json"), tokenizerConfig(""));
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"llama\"}");
        try (Tokenizer t = Tokenizer.load(dir)) {
            assertArrayEquals(new long[] {3, 8}, t.encode(" hi", false));
            assertArrayEquals(new long[] {8, 2, 8}, t.encode("hi</s>hi", false));
        }
    }

    @Test
    void qwen2KeepsItsByteLevelFileUnderALlamaTokenizerClass() throws Exception {
        // DeepSeek-R1-Distill-Qwen's shape: model_type qwen2, tokenizer_class LlamaTokenizerFast, a byte-level BPE
        // (bytelevel-tokenizer.json: h i Ġ hi Ġhi, <|endoftext|> 5); transformers 5 loads it as Qwen2Tokenizer, " hi"
        // one piece "Ġhi" (a Metaspace rebuild would give "▁hi", whose "▁" the byte-level vocabulary lacks)
        Path qwen = model("bytelevel-tokenizer.json",
                "{\"tokenizer_class\": \"LlamaTokenizerFast\", \"eos_token\": \"<|endoftext|>\"}",
                "{\"model_type\": \"qwen2\"}");
        try (Tokenizer t = Tokenizer.load(qwen)) {
            assertArrayEquals(new long[] {4}, t.encode(" hi", false));
            assertArrayEquals(new long[] {3, 4}, t.encode("hi hi", false));
            assertArrayEquals(new long[] {3, 5, 4}, t.encode("hi<|endoftext|> hi", false));
            assertEquals("hi hi", t.decode(new long[] {3, 4}));
        }
    }
}
