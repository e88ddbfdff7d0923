package io.qlora4j.trainer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.llama.LlamaFamily;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A tiny random Llama written as a Hugging Face directory (config.json, model.safetensors, a
 * word-level tokenizer.json and tokenizer_config.json) for trainer tests. Pieces are runs of letters
 * and single other characters; spaces separate them and are dropped.
 */
public final class TinyModel {
    /** The vocabulary; a token's id is its index. */
    public static final List<String> VOCAB = List.of("<pad>", "<s>", "</s>", "<unk>", "Human", "Assistant", "System",
            ":", "\n", "copy", "reverse", "first", "last", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k",
            "l", "m", "n", "o", "p", "q", "r", "s");

    private static final ObjectMapper JSON = new ObjectMapper();

    private TinyModel() {}

    /** {@code hidden} wide (MLP twice that), 2 layers, 4 query heads over 2 key/value heads, the vocabulary above. */
    static DecoderConfig config(int hidden) {
        return LlamaFamily.builder(hidden, 2 * hidden, 2, 4, VOCAB.size()).optNumKeyValueHeads(2).build();
    }

    /** Writes a model of hidden size 16 with weights drawn from {@code seed} into {@code dir} and returns it. */
    public static Path write(Path dir, long seed) throws IOException, ModelException {
        return write(dir, seed, 16);
    }

    /** Writes a model of hidden size {@code hidden} with weights drawn from {@code seed} into {@code dir}. */
    static Path write(Path dir, long seed, int hidden) throws IOException, ModelException {
        return write(dir, seed, hidden, DType.F32);
    }

    /** {@link #write(Path, long, int)} with the weights stored as {@code dtype}. */
    static Path write(Path dir, long seed, int hidden, DType dtype) throws IOException, ModelException {
        DecoderConfig c = config(hidden);
        Random random = new Random(seed);
        Files.createDirectories(dir);
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).build()) {
            put(writer, dtype, random, "model.embed_tokens.weight", 1.0, 0, c.vocabSize(), hidden);
            for (int l = 0; l < c.numHiddenLayers(); l++) {
                String p = "model.layers." + l + ".";
                put(writer, dtype, random, p + "input_layernorm.weight", 0.1, 1, hidden);
                for (String name : c.linearNames()) {
                    long[] inOut = c.inOut(name);
                    long[] shape = {inOut[1], inOut[0]};
                    put(writer, dtype, random, p + name + ".weight", 1 / Math.sqrt(shape[1]), 0, shape);
                }
                put(writer, dtype, random, p + "post_attention_layernorm.weight", 0.1, 1, hidden);
            }
            put(writer, dtype, random, "model.norm.weight", 0.1, 1, hidden);
            put(writer, dtype, random, "lm_head.weight", 1 / Math.sqrt(hidden), 0, c.vocabSize(), hidden);
        }
        c.write(dir.resolve("config.json"));
        writeTokenizer(dir);
        return dir;
    }

    private static void put(SafetensorsWriter writer, DType dtype, Random random, String name, double scale,
            double mean, long... shape) throws ModelException {
        int n = 1;
        for (long d : shape) {
            n *= (int) d;
        }
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
            values[i] = (float) (mean + scale * random.nextGaussian());
        }
        writer.addFloats(name, dtype, shape, values);
    }

    /** The ids of space-separated pieces. */
    public static long[] ids(String text) {
        return Arrays.stream(text.split(" ")).mapToLong(VOCAB::indexOf).toArray();
    }

    /** Writes the word-level tokenizer over {@link #VOCAB} (tokenizer.json, tokenizer_config.json) into {@code dir}. */
    public static void writeTokenizer(Path dir) throws IOException {
        writeTokenizer(dir, VOCAB, 4,
                Map.of("bos_token", "<s>", "eos_token", "</s>", "pad_token", "<pad>", "add_bos_token", false));
    }

    /**
     * Writes a word-level tokenizer.json over {@code vocab} (a token's id is its index, the first {@code specials}
     * entries are special added tokens, {@code <unk>} is among the entries) and {@code config} as
     * tokenizer_config.json; a model of {@link #VOCAB}'s size takes any vocabulary of that size.
     */
    public static void writeTokenizer(Path dir, List<String> vocab, int specials, Map<String, Object> config)
            throws IOException {
        ObjectNode root = JSON.createObjectNode().put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (String token : vocab.subList(0, specials)) {
            added.addObject().put("id", vocab.indexOf(token)).put("content", token).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
        }
        root.putNull("normalizer");
        ArrayNode steps = root.putObject("pre_tokenizer").put("type", "Sequence").putArray("pretokenizers");
        steps.addObject().put("type", "Split").put("behavior", "Removed").put("invert", false)
                .putObject("pattern").put("String", " ");
        steps.addObject().put("type", "Split").put("behavior", "Isolated").put("invert", false)
                .putObject("pattern").put("Regex", "\n|[A-Za-z]+|[^A-Za-z\n]");
        root.putNull("post_processor");
        root.putNull("decoder");
        ObjectNode model = root.putObject("model").put("type", "WordLevel").put("unk_token", "<unk>");
        ObjectNode ids = model.putObject("vocab");
        for (int i = 0; i < vocab.size(); i++) {
            ids.put(vocab.get(i), i);
        }
        JSON.writeValue(dir.resolve("tokenizer.json").toFile(), root);
        JSON.writeValue(dir.resolve("tokenizer_config.json").toFile(), config);
    }
}
