package io.qlora4j.model.checkpoint;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/** Test fixture (shared with other modules' tests through the test jar): tiny Hugging Face model directories. */
public final class TinyModels {
    /** Hidden size of the tiny model. */
    public static final int HIDDEN = 64;
    /** MLP size of the tiny model. */
    public static final int INTER = 96;
    /** Vocabulary size of the tiny model. */
    public static final int VOCAB = 50;

    private TinyModels() {}

    /** Writes a one-layer Llama-shaped checkpoint with random bf16 weights, as Hugging Face stores them. */
    public static Path writeTinyModel(Path dir) throws IOException, ModelException {
        Path model = dir.resolve("tiny");
        Files.createDirectories(model);
        Files.writeString(model.resolve("config.json"), "{\"model_type\": \"llama\", \"hidden_size\": " + HIDDEN
                + ", \"intermediate_size\": " + INTER + ", \"num_hidden_layers\": 1, \"num_attention_heads\": 4,"
                + " \"vocab_size\": " + VOCAB + ", \"bos_token_id\": 1, \"eos_token_id\": 2, \"torch_dtype\": \"bfloat16\"}");
        Files.writeString(model.resolve("tokenizer.json"), tokenizerJson());
        Random r = new Random(1);
        try (SafetensorsWriter w = SafetensorsWriter.builder(model).build()) {
            add(w, r, "model.embed_tokens.weight", VOCAB, HIDDEN);
            add(w, r, "model.layers.0.input_layernorm.weight", HIDDEN);
            for (String p : new String[] {"q_proj", "k_proj", "v_proj", "o_proj"}) {
                add(w, r, "model.layers.0.self_attn." + p + ".weight", HIDDEN, HIDDEN);
            }
            add(w, r, "model.layers.0.post_attention_layernorm.weight", HIDDEN);
            add(w, r, "model.layers.0.mlp.gate_proj.weight", INTER, HIDDEN);
            add(w, r, "model.layers.0.mlp.up_proj.weight", INTER, HIDDEN);
            add(w, r, "model.layers.0.mlp.down_proj.weight", HIDDEN, INTER);
            add(w, r, "model.norm.weight", HIDDEN);
            add(w, r, "lm_head.weight", VOCAB, HIDDEN);
        }
        return model;
    }

    /** The id of the word {@code "w<i>"} (3 <= i < VOCAB) in the tiny tokenizer; 0 is unk, 1 is s, 2 is /s. */
    public static String word(int id) {
        return "w" + id;
    }

    /** A WordLevel tokenizer over the tiny vocabulary whose post-processor prepends {@code <s>}, as Llama's does. */
    static String tokenizerJson() {
        StringBuilder vocab = new StringBuilder("\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2");
        for (int i = 3; i < VOCAB; i++) {
            vocab.append(", \"").append(word(i)).append("\": ").append(i);
        }
        String added = "{\"id\": %d, \"content\": \"%s\", \"single_word\": false, \"lstrip\": false, "
                + "\"rstrip\": false, \"normalized\": false, \"special\": true}";
        return "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": ["
                + String.format(added, 0, "<unk>") + ", " + String.format(added, 1, "<s>") + ", "
                + String.format(added, 2, "</s>") + "], \"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Whitespace\"},"
                + " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\","
                + " \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": [{\"SpecialToken\":"
                + " {\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"Sequence\":"
                + " {\"id\": \"B\", \"type_id\": 1}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1],"
                + " \"tokens\": [\"<s>\"]}}}, \"decoder\": null, \"model\": {\"type\": \"WordLevel\", \"vocab\": {"
                + vocab + "}, \"unk_token\": \"<unk>\"}}";
    }

    private static void add(SafetensorsWriter w, Random r, String name, long... shape) throws ModelException {
        int n = 1;
        for (long d : shape) {
            n *= (int) d;
        }
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextGaussian() * 0.05);
        }
        w.addFloats(name, DType.BF16, shape, v);
    }

}
