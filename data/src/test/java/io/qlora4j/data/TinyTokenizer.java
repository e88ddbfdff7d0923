package io.qlora4j.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes a small word-level tokenizer.json (and tokenizer_config.json) for tests: pieces are runs
 * of letters, single other characters and newlines, spaces are dropped; the special tokens are
 * added tokens. Its post-processor prepends {@code <s>} so a test can see special tokens stay off.
 * Expected ids come from {@link #ids}: the index of each piece in {@link #VOCAB}.
 */
final class TinyTokenizer {

    /** The vocabulary; a token's id is its index. */
    static final List<String> VOCAB = List.of(
            "<pad>", "<s>", "</s>", "<unk>",
            "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>",
            "<|end_of_text|>", "<|im_start|>", "<|im_end|>",
            "Human", "Assistant", "System", ":", "\n", "hi", "there", "how", "are", "you", "fine", "thanks",
            "be", "nice", "ok", "bye", "one", "two", "three", "four", "five", "six", "seven", "eight",
            "#", "Instruction", "Response", "Below", "is", "an", "instruction", "that", "describes", "a", "task",
            "Write", "response", "appropriately", "completes", "the", "request", ".", "[", "]", "/", "INST",
            "<", ">", "SYS", "user", "assistant", "system", "tool", "ipython", "{", "}", "\"", "content",
            "TOOL", "_", "RESULTS", "CALLS", ",", "You", "Qwen", "created", "by", "Alibaba", "Cloud", "helpful",
            "name", "arguments", "x", "y", "z", "text", "doc", "Action", "Input");

    private static final Set<String> SPECIAL = Set.of("<pad>", "<s>", "</s>", "<unk>", "<|begin_of_text|>",
            "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>",
            "<|im_start|>", "<|im_end|>");

    private static final ObjectMapper JSON = new ObjectMapper();

    private TinyTokenizer() {
    }

    /** The ids of the given pieces. */
    static int[] ids(String... pieces) {
        int[] out = new int[pieces.length];
        for (int i = 0; i < pieces.length; i++) {
            out[i] = VOCAB.indexOf(pieces[i]);
            if (out[i] < 0) {
                throw new IllegalArgumentException("not in the test vocabulary: " + pieces[i]);
            }
        }
        return out;
    }

    /** The pieces of the given ids. */
    static List<String> pieces(int[] ids) {
        return java.util.Arrays.stream(ids).mapToObj(VOCAB::get).toList();
    }

    /** Writes tokenizer.json and a tokenizer_config.json with these entries into {@code dir}. */
    static Path write(Path dir, Map<String, Object> config) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (String token : SPECIAL) {
            added.addObject().put("id", VOCAB.indexOf(token)).put("content", token).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
        }
        root.putNull("normalizer");
        ObjectNode pre = root.putObject("pre_tokenizer").put("type", "Sequence");
        ArrayNode steps = pre.putArray("pretokenizers");
        ObjectNode spaces = steps.addObject().put("type", "Split").put("behavior", "Removed").put("invert", false);
        spaces.putObject("pattern").put("String", " ");
        ObjectNode pieces = steps.addObject().put("type", "Split").put("behavior", "Isolated").put("invert", false);
        pieces.putObject("pattern").put("Regex", "\n|[A-Za-z]+|[^A-Za-z\n]");
        ObjectNode post = root.putObject("post_processor").put("type", "TemplateProcessing");
        post.putArray("single").addObject().putObject("SpecialToken").put("id", "<s>").put("type_id", 0);
        ((ArrayNode) post.get("single")).addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        post.putArray("pair").addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
        ObjectNode bos = post.putObject("special_tokens").putObject("<s>").put("id", "<s>");
        bos.putArray("ids").add(1);
        bos.putArray("tokens").add("<s>");
        writeWordLevel(dir, root, VOCAB, "<unk>", config);
        return dir;
    }

    /**
     * Completes {@code root} with a WordLevel model over {@code vocab} (a token's id is its index) and no decoder,
     * and writes it as tokenizer.json with {@code config} as tokenizer_config.json into {@code dir}.
     */
    static void writeWordLevel(Path dir, ObjectNode root, List<String> vocab, String unk, Map<String, Object> config)
            throws IOException {
        root.putNull("decoder");
        ObjectNode ids = root.putObject("model").put("type", "WordLevel").put("unk_token", unk).putObject("vocab");
        for (int i = 0; i < vocab.size(); i++) {
            ids.put(vocab.get(i), i);
        }
        Files.createDirectories(dir);
        JSON.writeValue(dir.resolve("tokenizer.json").toFile(), root);
        JSON.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
    }

    /** A Llama-2-like setup: bos {@code <s>}, eos {@code </s>} (as an AddedToken object), no pad. */
    static Path writeLlamaLike(Path dir) throws IOException {
        return write(dir, Map.of("bos_token", "<s>", "eos_token", Map.of("content", "</s>", "special", true),
                "add_bos_token", true));
    }
}
