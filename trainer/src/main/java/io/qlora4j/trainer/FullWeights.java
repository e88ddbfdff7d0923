package io.qlora4j.trainer;

import ai.djl.ndarray.NDArray;
import io.qlora4j.model.DenseEmbedding;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.checkpoint.AtomicFiles;
import io.qlora4j.model.checkpoint.ModelFiles;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.DecoderBlock;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.optim.Parameter;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Every weight of a dense model trained ({@code finetuning_type: full}): embeddings, norms, projections
 * and an untied lm_head, under their Hugging Face names. Meant for small models, so the project can
 * make its own base models; the output is a Hugging Face directory with the base's tokenizer files.
 */
final class FullWeights implements TrainableWeights {
    private final CausalLM model;
    private final Path baseDir;
    private final List<Parameter> parameters = new ArrayList<>();

    /**
     * Makes every weight of {@code model} (loaded from {@code baseDir}) require a gradient.
     *
     * @throws ModelException when a projection is quantized (full fine-tuning needs a dense base)
     */
    FullWeights(CausalLM model, Path baseDir) throws ModelException {
        this.model = model;
        this.baseDir = baseDir;
        if (!(model.embedTokens() instanceof DenseEmbedding embed)) {
            throw new ModelException("embed_tokens is held in 16 bits: finetuning_type full trains float32 weights "
                    + "(load with ModelLoader.Builder.optFloat32Embeddings)");
        }
        for (String name : model.config().tensorShapes().keySet()) {
            add(name, array(model, embed, name));
        }
    }

    /** The array of the checkpoint tensor {@code name} in {@code model}. */
    private static NDArray array(CausalLM model, DenseEmbedding embed, String name) throws ModelException {
        if (name.equals("model.embed_tokens.weight")) {
            return embed.weight();
        }
        if (name.equals("model.norm.weight")) {
            return model.norm();
        }
        if (name.equals("lm_head.weight")) {
            return dense(model.lmHead(), "lm_head").weight();
        }
        String rest = name.substring("model.layers.".length());
        DecoderBlock block = model.block(Integer.parseInt(rest.substring(0, rest.indexOf('.'))));
        String module = rest.substring(rest.indexOf('.') + 1, rest.lastIndexOf('.'));
        if (block.norms().containsKey(module)) {
            return block.norms().get(module);
        }
        DenseLinear linear = dense(block.linear(module), name.substring(0, name.lastIndexOf('.')));
        return name.endsWith(".bias") ? linear.bias() : linear.weight();
    }

    private static DenseLinear dense(LinearLayer layer, String name) throws ModelException {
        if (layer instanceof DenseLinear dense) {
            return dense;
        }
        throw new ModelException(name + " is quantized: finetuning_type full trains a dense float32 model; "
                + "remove quantization_bit or use finetuning_type lora");
    }

    private void add(String name, NDArray value) {
        value.setRequiresGradient(true);
        parameters.add(new Parameter(name, value));
    }

    @Override
    public List<Parameter> parameters() {
        return parameters;
    }

    @Override
    public boolean trainsEmbeddings() {
        return true;
    }

    @Override
    public void setTraining(boolean training) {
        // a dense decoder has no dropout
    }

    @Override
    public void setDropoutSeed(long seed) {
        // a dense decoder has no dropout
    }

    /** Writes {@code model.safetensors} (float32, Hugging Face names), config.json and the base's tokenizer files. */
    @Override
    public void save(Path dir) throws IOException, ModelException {
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).build()) {
            for (Parameter p : parameters) {
                writer.addFloats(p.name(), DType.F32, p.value().getShape().getShape(), p.value().toFloatArray());
            }
        }
        AtomicFiles.write(dir.resolve("config.json"), model.config().toJson().toPrettyString() + "\n");
        ModelFiles.copyCompanionFiles(baseDir, dir);
    }
}
