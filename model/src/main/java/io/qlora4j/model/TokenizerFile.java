package io.qlora4j.model;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A Hugging Face {@code tokenizer.json} checked before it reaches the native tokenizers library, which accepts
 * some broken files and then fails inside Rust (a post-processor naming a special token it does not define aborts
 * the JVM) or with errors that name no file. Checked: valid UTF-8 and JSON; a non-empty {@code model.vocab} of
 * non-negative ids; the model's unknown token inside it; added tokens with ids; every post-processor's special
 * tokens defined, with as many ids as tokens. The largest id the file can produce is kept, so that a model that
 * cannot embed it is refused by name ({@link #checkIdsBelow}) instead of failing on an index at run time.
 *
 * <p>{@link #open} loads the file as transformers 5's {@code AutoTokenizer} does, which does not always take
 * tokenizer.json as it is: see {@link #llamaPipeline}.
 */
public final class TokenizerFile {
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * The model types for which transformers 5 loads another class than a tokenizer_config.json's LlamaTokenizer:
     * mistral and phi3, for which it registers its generic tokenizer (tokenizer.json's pipeline as it is), and qwen2,
     * whose Hub configs it lists as naming an incorrect class (DeepSeek-R1-Distill-Qwen's LlamaTokenizerFast over a
     * byte-level file) and loads as Qwen2Tokenizer, which keeps the byte-level pipeline the file has.
     */
    private static final Set<String> NOT_LLAMA_TOKENIZER_TYPES = Set.of("mistral", "phi3", "qwen2");
    /** The {@code model.type} values Hugging Face tokenizers reads (a file may also leave the type out). */
    private static final Set<String> MODEL_TYPES = Set.of("BPE", "Unigram", "WordLevel", "WordPiece");

    private final Path file;
    private long maxId = -1;
    private String maxIdSource = "";
    private JsonNode rebuilt;

    private TokenizerFile(Path file) {
        this.file = file;
    }

    /**
     * Reads and checks the {@code tokenizer.json} at {@code path} (or inside the model directory {@code path}).
     *
     * @throws ModelException naming the file and what is wrong with it
     */
    public static TokenizerFile read(Path path) throws ModelException {
        Path file = Files.isDirectory(path) ? path.resolve("tokenizer.json") : path;
        if (!Files.isRegularFile(file)) {
            throw new ModelException(file + ": file not found");
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new ModelException(file + ": cannot read: " + e.getMessage(), e);
        }
        CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        try {
            utf8.decode(in);
        } catch (CharacterCodingException e) {
            throw new ModelException(file + ": not valid UTF-8 (at byte " + in.position() + ")");
        }
        JsonNode root;
        try {
            root = JSON.readTree(bytes);
        } catch (JacksonException e) {
            throw new ModelException(file + ": not valid JSON" + JsonErrors.where(e) + ": " + JsonErrors.reason(e), e);
        } catch (IOException e) {
            throw new ModelException(file + ": cannot read: " + e.getMessage(), e);
        }
        TokenizerFile checked = new TokenizerFile(file);
        checked.check(root);
        checked.rebuilt = llamaPipeline(root, checked.readOptional("tokenizer_config.json"),
                checked.readOptional("config.json"));
        return checked;
    }

    /**
     * The native tokenizer as transformers 5 loads this file: the file itself, or for a LlamaTokenizer the pipeline
     * {@link #llamaPipeline} rebuilds around its vocabulary, merges and post-processor.
     *
     * @param options DJL's tokenizer options (special tokens, truncation, padding)
     */
    public HuggingFaceTokenizer open(Map<String, String> options) throws IOException {
        try (InputStream in = rebuilt == null ? Files.newInputStream(file)
                : new ByteArrayInputStream(JSON.writeValueAsBytes(rebuilt))) {
            return HuggingFaceTokenizer.newInstance(in, options);
        }
    }

    /**
     * tokenizer.json with the pipeline transformers 5 gives a {@code LlamaTokenizer}, or null where it keeps the
     * file's. transformers 5's {@code AutoTokenizer} loads a tokenizer_config.json naming {@code LlamaTokenizer}
     * (or {@code LlamaTokenizerFast}) as that class, unless config.json's {@code model_type} is one it loads another
     * class for (mistral, phi3 and qwen2 keep their file: {@link #NOT_LLAMA_TOKENIZER_TYPES}). The class takes only the
     * vocabulary, merges and post-processor from tokenizer.json and builds the rest itself: no normalizer, a
     * {@code Metaspace} pre-tokenizer that prepends "▁" unless the text already starts with one (prepend scheme
     * {@code always} with {@code legacy: true}, {@code first} (the first piece of the text only, none after a special
     * token) with {@code legacy} false or unset, {@code never} with {@code add_prefix_space: false}), and the decoder
     * that goes with it. The file's own {@code Prepend("▁")} normalizer (Llama 2's) prepends to every piece, so
     * " Hello" there is "▁▁Hello" and with transformers "▁Hello"; LLaMA-Factory encodes every template slot with
     * what transformers loads.
     */
    private static JsonNode llamaPipeline(JsonNode root, JsonNode tokenizerConfig, JsonNode modelConfig) {
        String tokenizerClass = tokenizerConfig == null ? "" : tokenizerConfig.path("tokenizer_class").asText("");
        String modelType = modelConfig == null ? "" : modelConfig.path("model_type").asText("");
        if (!tokenizerClass.replaceFirst("Fast$", "").equals("LlamaTokenizer")
                || NOT_LLAMA_TOKENIZER_TYPES.contains(modelType)
                || !"BPE".equals(root.path("model").path("type").asText())) {
            return null;
        }
        // unset or null: the class's defaults, add_prefix_space true and legacy false
        JsonNode addPrefixSpace = tokenizerConfig.path("add_prefix_space");
        boolean prefixSpace = !addPrefixSpace.isBoolean() || addPrefixSpace.booleanValue();
        boolean legacy = tokenizerConfig.path("legacy").booleanValue();
        ObjectNode pipeline = root.deepCopy();
        pipeline.putNull("normalizer");
        pipeline.putObject("pre_tokenizer").put("type", "Metaspace").put("replacement", "\u2581")
                .put("prepend_scheme", !prefixSpace ? "never" : legacy ? "always" : "first").put("split", false);
        ObjectNode decoder = pipeline.putObject("decoder").put("type", "Sequence");
        ArrayNode steps = decoder.putArray("decoders");
        ObjectNode replace = steps.addObject().put("type", "Replace").put("content", " ");
        replace.putObject("pattern").put("String", "\u2581");
        steps.addObject().put("type", "ByteFallback");
        steps.addObject().put("type", "Fuse");
        if (prefixSpace) {
            steps.addObject().put("type", "Strip").put("content", " ").put("start", 1).put("stop", 0);
        }
        return pipeline;
    }

    /**
     * The JSON file {@code name} beside tokenizer.json, null when there is none. It must be an object: read as one, a
     * list or a scalar would have no keys, and every setting it was meant to hold would be silently dropped.
     */
    private JsonNode readOptional(String name) throws ModelException {
        Path beside = file.resolveSibling(name);
        if (!Files.isRegularFile(beside)) {
            return null;
        }
        try {
            JsonNode node = JSON.readTree(beside.toFile());
            if (node == null || !node.isObject()) {
                throw new ModelException(beside + ": expected a JSON object");
            }
            return node;
        } catch (JacksonException e) {
            throw new ModelException(beside + ": not valid JSON" + JsonErrors.where(e) + ": " + JsonErrors.reason(e),
                    e);
        } catch (IOException e) {
            throw new ModelException(beside + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** The file that was checked. */
    public Path path() {
        return file;
    }

    /**
     * Refuses a tokenizer that can produce an id the model has no embedding row for.
     *
     * @param vocabSize the model's {@code vocab_size}
     * @param configJson the file that says so, for the message
     */
    public void checkIdsBelow(int vocabSize, Path configJson) throws ModelException {
        if (maxId >= vocabSize) {
            throw new ModelException(file + ": " + maxIdSource + " has id " + maxId + ", but the model has "
                    + vocabSize + " embeddings (vocab_size in " + configJson + "); use the model's own tokenizer");
        }
    }

    private void check(JsonNode root) throws ModelException {
        if (root == null || !root.isObject()) {
            throw invalid("expected a JSON object");
        }
        JsonNode model = root.path("model");
        if (!model.isObject()) {
            throw invalid("expected an object \"model\"");
        }
        JsonNode type = model.path("type");
        if (!type.isMissingNode() && !MODEL_TYPES.contains(type.asText())) {
            throw invalid("model.type " + type + " is not one of the tokenizers library's models ("
                    + String.join(", ", new TreeSet<>(MODEL_TYPES)) + ")");
        }
        Set<String> vocab = checkVocab(model.path("vocab"));
        JsonNode unk = model.path("unk_token");
        if (unk.isTextual() && !vocab.contains(unk.asText())) {
            throw invalid("model.unk_token '" + unk.asText() + "' is not in model.vocab");
        }
        JsonNode unkId = model.path("unk_id");
        if (unkId.isNumber() && (unkId.asLong() < 0 || unkId.asLong() >= vocab.size())) {
            throw invalid("model.unk_id " + unkId.asText() + " is outside model.vocab (" + vocab.size() + " pieces)");
        }
        JsonNode added = root.path("added_tokens");
        if (!added.isMissingNode() && !added.isNull()) {
            if (!added.isArray()) {
                throw invalid("added_tokens: expected a list");
            }
            for (JsonNode token : added) {
                if (!token.path("content").isTextual()) {
                    throw invalid("added_tokens: every token needs a string \"content\"");
                }
                noteId(token.path("id"), "added token '" + token.path("content").asText() + "'");
            }
        }
        checkProcessor(root.path("post_processor"), "post_processor");
    }

    /** The pieces of {@code model.vocab}: a {piece: id} object (BPE, WordPiece, WordLevel) or Unigram's [[piece, score]]. */
    private Set<String> checkVocab(JsonNode vocab) throws ModelException {
        Set<String> pieces = new HashSet<>();
        if (vocab.isObject()) {
            for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                noteId(e.getValue(), "model.vocab token '" + e.getKey() + "'");
                pieces.add(e.getKey());
            }
        } else if (vocab.isArray()) {
            for (JsonNode entry : vocab) {
                if (!entry.isArray() || !entry.path(0).isTextual()) {
                    throw invalid("model.vocab: expected [piece, score] pairs");
                }
                pieces.add(entry.path(0).asText());
            }
            if (vocab.size() > 0) {
                maxAt(vocab.size() - 1L, "model.vocab piece '" + vocab.path(vocab.size() - 1).path(0).asText() + "'");
            }
        } else {
            throw invalid("model.vocab: expected an object of token ids or a list of pieces");
        }
        if (pieces.isEmpty()) {
            throw invalid("model.vocab is empty");
        }
        return pieces;
    }

    /** TemplateProcessing, BertProcessing/RobertaProcessing and Sequence post-processors, as tokenizers reads them. */
    private void checkProcessor(JsonNode processor, String where) throws ModelException {
        if (processor.isMissingNode() || processor.isNull()) {
            return;
        }
        switch (processor.path("type").asText()) {
            case "TemplateProcessing" -> {
                Set<String> defined = new HashSet<>();
                JsonNode special = processor.path("special_tokens");
                for (Iterator<Map.Entry<String, JsonNode>> it = special.fields(); it.hasNext(); ) {
                    Map.Entry<String, JsonNode> e = it.next();
                    JsonNode ids = e.getValue().path("ids");
                    JsonNode tokens = e.getValue().path("tokens");
                    if (!ids.isArray() || !tokens.isArray() || ids.size() != tokens.size()) {
                        throw invalid(where + ".special_tokens '" + e.getKey() + "': expected as many ids as tokens");
                    }
                    for (JsonNode id : ids) {
                        noteId(id, where + " special token '" + e.getKey() + "'");
                    }
                    defined.add(e.getKey());
                }
                for (String template : new String[] {"single", "pair"}) {
                    for (String token : specialTokens(processor.path(template))) {
                        if (!defined.contains(token)) {
                            throw invalid(where + "." + template + " uses the special token '" + token
                                    + "', which " + where + ".special_tokens does not define");
                        }
                    }
                }
            }
            case "BertProcessing", "RobertaProcessing" -> {
                for (String role : new String[] {"sep", "cls"}) {
                    JsonNode pair = processor.path(role);
                    if (!pair.isArray() || pair.size() != 2 || !pair.path(0).isTextual()) {
                        throw invalid(where + "." + role + ": expected [token, id]");
                    }
                    noteId(pair.path(1), where + " " + role + " token '" + pair.path(0).asText() + "'");
                }
            }
            case "Sequence" -> {
                int i = 0;
                for (JsonNode inner : processor.path("processors")) {
                    checkProcessor(inner, where + ".processors[" + i++ + "]");
                }
            }
            default -> { } // ByteLevel and the rest add no tokens
        }
    }

    /** The special-token names a template (a list of {"SpecialToken": {"id": ...}} and {"Sequence": ...}) uses. */
    private static Set<String> specialTokens(JsonNode template) {
        Set<String> names = new HashSet<>();
        for (JsonNode piece : template) {
            if (piece.has("SpecialToken")) {
                names.add(piece.path("SpecialToken").path("id").asText());
            }
        }
        return names;
    }

    private void noteId(JsonNode id, String source) throws ModelException {
        if (!id.canConvertToLong() || !id.isIntegralNumber() || id.asLong() < 0 || id.asLong() > 0xFFFF_FFFFL) {
            throw invalid(source + " has id " + id + "; expected an integer from 0");
        }
        maxAt(id.asLong(), source);
    }

    private void maxAt(long id, String source) {
        if (id > maxId) {
            maxId = id;
            maxIdSource = source;
        }
    }

    private ModelException invalid(String what) {
        return new ModelException(file + ": " + what);
    }
}
