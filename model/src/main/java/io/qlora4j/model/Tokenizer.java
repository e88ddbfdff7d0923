package io.qlora4j.model;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

/**
 * A Hugging Face {@code tokenizer.json} through DJL's native tokenizers, set up to behave like
 * {@code tokenizer(text)} in Python: special tokens as the post-processor adds them, no padding, and no
 * truncation unless a maximum length is asked for (DJL's own default silently truncates to 512).
 */
public final class Tokenizer implements AutoCloseable {
    private final HuggingFaceTokenizer tokenizer;

    private Tokenizer(HuggingFaceTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /**
     * Loads {@code tokenizer.json} (or the one inside a model directory) without truncation, after checking it, as
     * transformers 5 loads it ({@link TokenizerFile}).
     */
    public static Tokenizer load(Path path) throws ModelException {
        return load(path, 0);
    }

    /** Loads a tokenizer that truncates encodings to {@code maxLength} tokens (0: never truncate). */
    public static Tokenizer load(Path path, int maxLength) throws ModelException {
        return load(TokenizerFile.read(path), maxLength);
    }

    /**
     * Loads the tokenizer of the model directory {@code modelDir}, refusing one that can produce ids beyond the
     * model's {@code vocabSize} embeddings.
     */
    public static Tokenizer forModel(Path modelDir, int vocabSize) throws ModelException {
        TokenizerFile checked = TokenizerFile.read(modelDir);
        checked.checkIdsBelow(vocabSize, modelDir.resolve("config.json"));
        return load(checked, 0);
    }

    private static Tokenizer load(TokenizerFile checked, int maxLength) throws ModelException {
        if (maxLength < 0) {
            throw new IllegalArgumentException("maxLength must be >= 0, got " + maxLength);
        }
        Map<String, String> options = maxLength == 0
                ? Map.of("addSpecialTokens", "true", "truncation", "false", "padding", "false")
                : Map.of("addSpecialTokens", "true", "truncation", "true", "padding", "false",
                        "maxLength", Integer.toString(maxLength), "modelMaxLength", Integer.toString(maxLength));
        try {
            return new Tokenizer(checked.open(options));
        } catch (IOException | RuntimeException e) {
            throw new ModelException(checked.path() + ": cannot load tokenizer (" + e.getMessage() + ")", e);
        }
    }

    /** The ids of {@code text}, with the special tokens the post-processor adds (e.g. a leading {@code <s>}). */
    public long[] encode(String text) {
        return tokenizer.encode(text).getIds();
    }

    /** The ids of {@code text}, with or without the post-processor's special tokens. */
    public long[] encode(String text, boolean addSpecialTokens) {
        return tokenizer.encode(text, addSpecialTokens, false).getIds();
    }

    /** The text of {@code ids}, special tokens included (transformers' default). */
    public String decode(long[] ids) {
        return decode(ids, false);
    }

    /** The text of {@code ids}, optionally without special tokens. */
    public String decode(long[] ids, boolean skipSpecialTokens) {
        return tokenizer.decode(ids, skipSpecialTokens);
    }

    /**
     * A decoder for streaming: push generated ids one by one and get back only the text they complete.
     * {@code context} (usually the prompt) lets the first new token decode with its leading space.
     */
    public DecodeStream stream(long[] context, boolean skipSpecialTokens) {
        return new DecodeStream(context, skipSpecialTokens);
    }

    /** Releases the native tokenizer. */
    @Override
    public void close() {
        tokenizer.close();
    }

    /**
     * Incremental decoding: text is emitted once decoding the new ids grows the text of a short window of
     * preceding ids, and held back while it ends in an incomplete UTF-8 sequence (U+FFFD).
     */
    public final class DecodeStream {
        private static final int WINDOW = 5;
        private final boolean skipSpecialTokens;
        private long[] ids;
        private int size;
        private int prefixOffset;
        private int readOffset;

        private DecodeStream(long[] context, boolean skipSpecialTokens) {
            this.skipSpecialTokens = skipSpecialTokens;
            this.ids = Arrays.copyOf(context, Math.max(16, context.length * 2));
            this.size = context.length;
            this.readOffset = context.length;
            this.prefixOffset = Math.max(0, context.length - WINDOW);
        }

        /** Adds one id and returns the text it completes (possibly empty). */
        public String push(long id) {
            if (size == ids.length) {
                ids = Arrays.copyOf(ids, size * 2);
            }
            ids[size++] = id;
            String prefix = decode(Arrays.copyOfRange(ids, prefixOffset, readOffset), skipSpecialTokens);
            String text = decode(Arrays.copyOfRange(ids, prefixOffset, size), skipSpecialTokens);
            if (text.length() <= prefix.length() || text.endsWith("\uFFFD")) {
                return "";
            }
            prefixOffset = readOffset;
            readOffset = size;
            return text.substring(prefix.length());
        }
    }
}
