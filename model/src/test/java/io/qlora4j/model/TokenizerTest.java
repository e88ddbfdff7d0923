package io.qlora4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /** A WordLevel tokenizer (whitespace split) whose TemplateProcessing post-processor prepends {@code <s>}. */
    private Path wordLevel() throws IOException {
        ObjectNode root = skeleton();
        ObjectNode bos = JSON.createObjectNode();
        bos.putObject("SpecialToken").put("id", "<s>").put("type_id", 0);
        ObjectNode seqA = JSON.createObjectNode();
        seqA.putObject("Sequence").put("id", "A").put("type_id", 0);
        ObjectNode seqB = JSON.createObjectNode();
        seqB.putObject("Sequence").put("id", "B").put("type_id", 1);
        ObjectNode post = root.putObject("post_processor").put("type", "TemplateProcessing");
        post.putArray("single").add(bos).add(seqA);
        post.putArray("pair").add(bos).add(seqA).add(seqB);
        ObjectNode special = post.putObject("special_tokens").putObject("<s>").put("id", "<s>");
        special.putArray("ids").add(1);
        special.putArray("tokens").add("<s>");
        root.putObject("pre_tokenizer").put("type", "Whitespace");
        ObjectNode model = root.putObject("model").put("type", "WordLevel").put("unk_token", "<unk>");
        ObjectNode vocab = model.putObject("vocab");
        String[] words = {"<unk>", "<s>", "</s>", "the", "cat", "sat", "on", "mat"};
        for (int i = 0; i < words.length; i++) {
            vocab.put(words[i], i);
        }
        return write(root);
    }

    /** A byte-level BPE without merges: token id = byte value, so ids are the UTF-8 bytes. */
    private Path byteLevel() throws IOException {
        ObjectNode root = skeleton();
        root.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false)
                .put("trim_offsets", true).put("use_regex", true);
        root.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", false)
                .put("trim_offsets", true).put("use_regex", true);
        root.putNull("post_processor");
        ObjectNode model = root.putObject("model").put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.put("fuse_unk", false).put("byte_fallback", false);
        ObjectNode vocab = model.putObject("vocab");
        int[] chars = gpt2ByteChars();
        for (int b = 0; b < 256; b++) {
            vocab.put(new String(Character.toChars(chars[b])), b);
        }
        model.putArray("merges");
        return write(root);
    }

    private static ObjectNode skeleton() {
        ObjectNode root = JSON.createObjectNode().put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        String[] specials = {"<unk>", "<s>", "</s>"};
        for (int i = 0; i < specials.length; i++) {
            added.addObject().put("id", i).put("content", specials[i]).put("single_word", false).put("lstrip", false)
                    .put("rstrip", false).put("normalized", false).put("special", true);
        }
        root.putNull("normalizer");
        root.putNull("decoder");
        return root;
    }

    /** GPT-2's printable stand-ins for the 256 byte values. */
    private static int[] gpt2ByteChars() {
        int[] map = new int[256];
        boolean[] printable = new boolean[256];
        for (int b = 0; b < 256; b++) {
            printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        }
        int next = 256;
        for (int b = 0; b < 256; b++) {
            map[b] = printable[b] ? b : next++;
        }
        return map;
    }

    private Path write(ObjectNode root) throws IOException {
        Path file = Files.createTempFile(dir, "tokenizer", ".json");
        Files.writeString(file, JSON.writeValueAsString(root));
        return file;
    }

    @Test
    void encodeAddsThePostProcessorsBosAndMapsUnknownWords() throws Exception {
        try (Tokenizer t = Tokenizer.load(wordLevel())) {
            assertArrayEquals(new long[] {1, 3, 4, 5, 6, 3, 7}, t.encode("the cat sat on the mat"));
            assertArrayEquals(new long[] {1, 3, 0}, t.encode("the dog"));
            assertArrayEquals(new long[] {3, 4}, t.encode("the cat", false));
        }
    }

    @Test
    void longTextIsNotTruncatedUnlessAMaximumIsAsked() throws Exception {
        String text = "the cat ".repeat(400).trim();
        Path file = wordLevel();
        try (Tokenizer t = Tokenizer.load(file)) {
            assertEquals(801, t.encode(text).length);
        }
        try (Tokenizer t = Tokenizer.load(file, 8)) {
            assertArrayEquals(new long[] {1, 3, 4, 3, 4, 3, 4, 3}, t.encode(text));
        }
    }

    @Test
    void decodeKeepsOrSkipsSpecialTokens() throws Exception {
        try (Tokenizer t = Tokenizer.load(wordLevel())) {
            assertEquals("<s> the cat sat", t.decode(new long[] {1, 3, 4, 5}));
            assertEquals("the cat sat", t.decode(new long[] {1, 3, 4, 5}, true));
        }
    }

    @Test
    void streamEmitsEachWordOnceWithItsSeparator() throws Exception {
        try (Tokenizer t = Tokenizer.load(wordLevel())) {
            Tokenizer.DecodeStream stream = t.stream(new long[] {1, 3}, true);
            assertEquals(List.of(" cat", " sat", " on", " the", " mat"),
                    List.of(stream.push(4), stream.push(5), stream.push(6), stream.push(3), stream.push(7)));
        }
    }

    @Test
    void streamHoldsBackAnIncompleteUtf8Character() throws Exception {
        try (Tokenizer t = Tokenizer.load(byteLevel())) {
            // "é" is UTF-8 C3 A9, so with one token per byte it is ids 195, 169
            assertArrayEquals(new long[] {'a', 0xC3, 0xA9, 'b'}, t.encode("aéb"));
            Tokenizer.DecodeStream stream = t.stream(new long[0], false);
            List<String> pieces = new ArrayList<>();
            for (long id : new long[] {'a', 0xC3, 0xA9, 'b'}) {
                pieces.add(stream.push(id));
            }
            assertEquals(List.of("a", "", "é", "b"), pieces);
        }
    }

    @Test
    void missingTokenizerFileIsNamed() {
        ModelException e = assertThrows(ModelException.class, () -> Tokenizer.load(dir));
        assertEquals(dir.resolve("tokenizer.json") + ": file not found", e.getMessage());
    }
}
