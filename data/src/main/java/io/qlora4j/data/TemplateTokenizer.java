package io.qlora4j.data;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.djl.huggingface.tokenizers.jni.TokenizersLibrary;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.TokenizerFile;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.OptionalInt;

/**
 * A Hugging Face tokenizer as chat templates use it: every text piece is encoded WITHOUT special
 * tokens, with truncation and padding off (LLaMA-Factory's {@code add_special_tokens=False}), and
 * the bos/eos/pad ids are looked up from the model directory so the template inserts them itself.
 * tokenizer.json is loaded as transformers 5 loads it ({@link TokenizerFile#open}); DJL itself applies nothing from
 * tokenizer_config.json to it.
 */
public final class TemplateTokenizer implements AutoCloseable {

    private final HuggingFaceTokenizer tokenizer;
    private final boolean ownsTokenizer;
    private final Map<String, Integer> addedTokens;
    private final int bosId;
    private final String eosToken;
    private final int eosId;
    private final int padId;
    private final Path file;

    private TemplateTokenizer(HuggingFaceTokenizer tokenizer, boolean ownsTokenizer, Map<String, Integer> addedTokens,
            int bosId, String eosToken, int eosId, int padId, Path file) {
        this.tokenizer = tokenizer;
        this.ownsTokenizer = ownsTokenizer;
        this.addedTokens = addedTokens;
        this.bosId = bosId;
        this.eosToken = eosToken;
        this.eosId = eosId;
        this.padId = padId;
        this.file = file;
    }

    /**
     * Opens {@code tokenizer.json} of a model directory (or the file itself), checked and as transformers 5 loads
     * it ({@link TokenizerFile}), with truncation, padding and special tokens off, and reads its special tokens; the
     * tokenizer is closed with this.
     */
    public static TemplateTokenizer open(Path modelDirOrFile) throws DataException {
        Path file = Files.isDirectory(modelDirOrFile) ? modelDirOrFile.resolve("tokenizer.json") : modelDirOrFile;
        if (!Files.isRegularFile(file)) {
            throw new DataException(file + ": tokenizer.json not found");
        }
        HuggingFaceTokenizer hf;
        try {
            hf = TokenizerFile.read(file).open(Map.of("addSpecialTokens", "false", "truncation", "false",
                    "padding", "false"));
        } catch (ModelException e) {
            throw new DataException(e.getMessage(), e);
        } catch (IOException | RuntimeException e) {
            throw new DataException(file + ": cannot load tokenizer: " + e.getMessage(), e);
        }
        return create(hf, true, file);
    }

    /**
     * Wraps a tokenizer the caller built and keeps owning; its special tokens come from the files
     * beside {@code tokenizer.json} in {@code modelDir}. Refuses a tokenizer that truncates or pads.
     */
    public static TemplateTokenizer wrap(HuggingFaceTokenizer tokenizer, Path modelDir) throws DataException {
        if (!"DO_NOT_TRUNCATE".equals(tokenizer.getTruncation()) || !"DO_NOT_PAD".equals(tokenizer.getPadding())) {
            throw new DataException("tokenizer for " + modelDir + " truncates (" + tokenizer.getTruncation()
                    + ") or pads (" + tokenizer.getPadding() + "): build it with optTruncation(false), optPadding(false)");
        }
        Path file = Files.isDirectory(modelDir) ? modelDir.resolve("tokenizer.json") : modelDir;
        return create(tokenizer, false, file);
    }

    private static TemplateTokenizer create(HuggingFaceTokenizer hf, boolean owns, Path file) throws DataException {
        try {
            SpecialTokens special = SpecialTokens.read(file);
            TemplateTokenizer bare = new TemplateTokenizer(hf, false, special.addedTokens(), -1, null, -1, -1, file);
            int bos = special.bosToken() == null ? special.bosId() : bare.known("bos_token", special.bosToken());
            int eos = special.eosToken() == null ? special.eosId() : bare.known("eos_token", special.eosToken());
            // a pad the tokenizer lacks is none: pad then falls back to eos, and padding is never a label
            int pad = special.padToken() == null ? -1 : bare.tokenId(special.padToken()).orElse(-1);
            return new TemplateTokenizer(hf, owns, special.addedTokens(), bos, special.eosToken(), eos, pad, file);
        } catch (DataException | RuntimeException e) {
            if (owns) {
                hf.close();
            }
            throw e;
        }
    }

    /**
     * A view sharing this tokenizer with a different eos token (the templates that replace eos by
     * their first stop word) and, as transformers does, pad = eos when the tokenizer has no pad.
     */
    TemplateTokenizer withEos(String token, int id) {
        return new TemplateTokenizer(tokenizer, false, addedTokens, bosId, token, id, padId, file);
    }

    /** The {@code tokenizer.json} this tokenizer was read from (its folder holds tokenizer_config.json). */
    Path file() {
        return file;
    }

    /** Encodes one text piece to ids without special tokens, truncation or padding. */
    public int[] encode(String text) {
        if (text.isEmpty()) {
            return new int[0];
        }
        // the ids alone, straight from the native encoding: HuggingFaceTokenizer.encode would also
        // build every token string and char span, a third of the cost
        TokenizersLibrary lib = TokenizersLibrary.LIB;
        long encoding = lib.encode(tokenizer.getHandle(), text, false);
        long[] ids;
        try {
            ids = lib.getTokenIds(encoding);
        } finally {
            lib.deleteEncoding(encoding);
        }
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    /** Decodes ids back to text, special tokens kept (for previews and messages). */
    public String decode(int[] ids) {
        return tokenizer.decode(Arrays.stream(ids).asLongStream().toArray(), false);
    }

    /**
     * The id of one token: an added token of tokenizer.json, else the single id the text encodes
     * to; empty when it is not a single token.
     */
    public OptionalInt tokenId(String token) {
        Integer id = addedTokens.get(token);
        if (id != null) {
            return OptionalInt.of(id);
        }
        int[] ids = encode(token);
        return ids.length == 1 ? OptionalInt.of(ids[0]) : OptionalInt.empty();
    }

    /**
     * The id of the special token tokenizer_config.json names under {@code key}, which must be one token of this
     * tokenizer (bos and eos, which the templates write): transformers would add a missing one as a new token past
     * the model's embeddings.
     */
    private int known(String key, String token) throws DataException {
        OptionalInt id = tokenId(token);
        if (id.isEmpty()) {
            throw new DataException(file.resolveSibling("tokenizer_config.json") + ": " + key + " '" + token
                    + "' is not a token of " + file);
        }
        return id.getAsInt();
    }

    /** The bos id, -1 when the tokenizer has none. */
    public int bosId() {
        return bosId;
    }

    /** The eos id, -1 when the tokenizer has none. */
    public int eosId() {
        return eosId;
    }

    /** The eos token text, null when the tokenizer has none. */
    public String eosToken() {
        return eosToken;
    }

    /** The pad id: the tokenizer's pad token, else eos (as LLaMA-Factory sets it), else 0. */
    public int padId() {
        return padId >= 0 ? padId : Math.max(eosId, 0);
    }

    /** Closes the native tokenizer when this object opened it; a wrapped one stays open. */
    @Override
    public void close() {
        if (ownsTokenizer) {
            tokenizer.close();
        }
    }
}
