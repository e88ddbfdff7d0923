package io.qlora4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link TokenizerFile}: broken tokenizer.json files that the native tokenizers library would accept and then abort
 * on (a post-processor naming an undefined special token) or fail on without naming the file, each refused in one line.
 */
class TokenizerFileTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /** A WordLevel tokenizer over {@code <unk> <s> a b c} whose post-processor prepends {@code <s>}. */
    private static ObjectNode valid() {
        ObjectNode root = JSON.createObjectNode().put("version", "1.0");
        ArrayNode added = root.putArray("added_tokens");
        added.addObject().put("id", 1).put("content", "<s>").put("single_word", false).put("lstrip", false)
                .put("rstrip", false).put("normalized", false).put("special", true);
        root.putObject("pre_tokenizer").put("type", "Whitespace");
        ObjectNode post = root.putObject("post_processor").put("type", "TemplateProcessing");
        post.putArray("single").add(special("<s>")).add(sequence("A"));
        post.putArray("pair").add(special("<s>")).add(sequence("A")).add(sequence("B"));
        ObjectNode s = post.putObject("special_tokens").putObject("<s>").put("id", "<s>");
        s.putArray("ids").add(1);
        s.putArray("tokens").add("<s>");
        ObjectNode model = root.putObject("model").put("type", "WordLevel").put("unk_token", "<unk>");
        ObjectNode vocab = model.putObject("vocab");
        String[] words = {"<unk>", "<s>", "a", "b", "c"};
        for (int i = 0; i < words.length; i++) {
            vocab.put(words[i], i);
        }
        return root;
    }

    private static ObjectNode sequence(String id) {
        return (ObjectNode) JSON.createObjectNode().set("Sequence", JSON.createObjectNode().put("id", id)
                .put("type_id", 0));
    }

    private static ObjectNode special(String id) {
        return (ObjectNode) JSON.createObjectNode().set("SpecialToken", JSON.createObjectNode().put("id", id)
                .put("type_id", 0));
    }

    private Path write(Consumer<ObjectNode> change) throws Exception {
        ObjectNode root = valid();
        change.accept(root);
        Path file = dir.resolve("tokenizer.json");
        JSON.writeValue(file.toFile(), root);
        return file;
    }

    private String refusal(Consumer<ObjectNode> change) throws Exception {
        Path file = write(change);
        String message = assertThrows(ModelException.class, () -> TokenizerFile.read(dir)).getMessage();
        assertEquals(file + ": ", message.substring(0, file.toString().length() + 2));
        return message.substring(file.toString().length() + 2);
    }

    @Test
    void validFileLoadsAndItsPostProcessorAddsItsSpecialToken() throws Exception {
        write(root -> { });
        TokenizerFile.read(dir).checkIdsBelow(5, dir.resolve("config.json"));
        try (Tokenizer tokenizer = Tokenizer.forModel(dir, 5)) {
            assertArrayEquals(new long[] {1, 2, 4}, tokenizer.encode("a c"));
        }
    }

    @Test
    void postProcessorNamingAnUndefinedSpecialTokenIsRefusedBeforeTheNativeAbort() throws Exception {
        assertEquals("post_processor.single uses the special token '<bos>', which post_processor.special_tokens does"
                + " not define", refusal(root -> ((ArrayNode) root.path("post_processor").path("single")).set(0,
                        special("<bos>"))));
        assertEquals("post_processor.pair uses the special token '[SEP]', which post_processor.special_tokens does"
                + " not define", refusal(root -> ((ArrayNode) root.path("post_processor").path("pair")).add(special("[SEP]"))));
        assertEquals("post_processor.special_tokens '<s>': expected as many ids as tokens", refusal(root ->
                ((ArrayNode) root.path("post_processor").path("special_tokens").path("<s>").path("ids")).add(2)));
    }

    @Test
    void emptyVocabularyOrUnknownTokenOutsideItIsRefused() throws Exception {
        assertEquals("model.vocab is empty", refusal(root -> ((ObjectNode) root.path("model")).putObject("vocab")));
        assertEquals("model.unk_token '<unk>' is not in model.vocab",
                refusal(root -> ((ObjectNode) root.path("model").path("vocab")).remove("<unk>")));
        assertEquals("model.vocab token 'a' has id -5; expected an integer from 0",
                refusal(root -> ((ObjectNode) root.path("model").path("vocab")).put("a", -5)));
    }

    @Test
    void aModelTypeTheTokenizersLibraryLacksIsNamed() throws Exception {
        assertEquals("model.type \"Foo\" is not one of the tokenizers library's models (BPE, Unigram, WordLevel,"
                + " WordPiece)", refusal(root -> ((ObjectNode) root.path("model")).put("type", "Foo")));
        // no type at all: the library tells the model by its fields
        write(root -> ((ObjectNode) root.path("model")).remove("type"));
        try (Tokenizer tokenizer = Tokenizer.forModel(dir, 5)) {
            assertArrayEquals(new long[] {1, 2, 4}, tokenizer.encode("a c"));
        }
    }

    @Test
    void invalidUtf8OrJsonIsNamedWithItsPlace() throws Exception {
        Path file = dir.resolve("tokenizer.json");
        byte[] bytes = JSON.writeValueAsBytes(valid());
        String text = new String(bytes, StandardCharsets.UTF_8);
        int at = text.indexOf("\"c\"") + 1;
        bytes[at] = (byte) 0xFF;
        Files.write(file, bytes);
        assertEquals(file + ": not valid UTF-8 (at byte " + at + ")",
                assertThrows(ModelException.class, () -> TokenizerFile.read(file)).getMessage());
        Files.writeString(file, "{\"model\": {\"vocab\": {\"a\": 0,}}}");
        assertEquals(file + ": not valid JSON at line 1, column 29: Unexpected character ('}' (code 125)): was"
                + " expecting double-quote to start field name",
                assertThrows(ModelException.class, () -> TokenizerFile.read(file)).getMessage());
    }

    /** A tokenizer_config.json that is not an object is refused naming it, not read as one without settings. */
    @Test
    void tokenizerConfigThatIsNoObjectIsNamed() throws Exception {
        write(root -> { });
        Path config = dir.resolve("tokenizer_config.json");
        for (String text : new String[] {"[1]", "\"LlamaTokenizer\"", "null"}) {
            Files.writeString(config, text);
            assertEquals(config + ": expected a JSON object",
                    assertThrows(ModelException.class, () -> TokenizerFile.read(dir)).getMessage(), text);
        }
    }

    @Test
    void idTheModelCannotEmbedIsNamedWithTheConfigThatSaysSo() throws Exception {
        Path config = dir.resolve("config.json");
        write(root -> ((ObjectNode) root.path("model").path("vocab")).put("c", 100000));
        assertEquals(dir.resolve("tokenizer.json") + ": model.vocab token 'c' has id 100000, but the model has 5"
                + " embeddings (vocab_size in " + config + "); use the model's own tokenizer",
                assertThrows(ModelException.class, () -> TokenizerFile.read(dir).checkIdsBelow(5, config)).getMessage());
        write(root -> {
            ObjectNode bert = JSON.createObjectNode().put("type", "BertProcessing");
            bert.putArray("sep").add("c").add(7);
            bert.putArray("cls").add("<s>").add(1);
            root.putObject("post_processor").put("type", "Sequence").putArray("processors").add(bert);
        });
        assertEquals(dir.resolve("tokenizer.json") + ": post_processor.processors[0] sep token 'c' has id 7, but the"
                + " model has 5 embeddings (vocab_size in " + config + "); use the model's own tokenizer",
                assertThrows(ModelException.class, () -> Tokenizer.forModel(dir, 5)).getMessage());
    }
}
