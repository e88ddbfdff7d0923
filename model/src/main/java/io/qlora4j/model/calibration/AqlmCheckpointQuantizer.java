package io.qlora4j.model.calibration;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.core.Embedding;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.checkpoint.ModelFiles;
import io.qlora4j.model.checkpoint.OutputDirectory;
import io.qlora4j.model.decoder.AttentionContext;
import io.qlora4j.model.decoder.DecoderBlock;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.format.AqlmFormat;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.quant.aqlm.AqlmBlockTuner;
import io.qlora4j.quant.aqlm.AqlmQuantizer;
import io.qlora4j.quant.aqlm.AqlmTensor;
import io.qlora4j.quant.aqlm.NdAqlmTensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes the AQLM checkpoint of a float checkpoint of any registered family the way the AQLM repository's {@code main.py} makes one
 * and {@code convert_to_hf.py} saves it, one decoder block at a time: the calibration sequences are embedded; then
 * for each block its float weights are read, its inputs run through it to record {@code X^T X} for every linear and
 * the block's original outputs, each linear is quantized against its statistic ({@link AqlmQuantizer}), the
 * codebooks and scales of the whole block are optionally fine-tuned towards the original outputs
 * ({@link AqlmBlockTuner}), and the quantized block's outputs become the next block's inputs. The output is the
 * Hugging Face AQLM layout ({@code codes}, {@code codebooks}, {@code scales} per linear, every other tensor as it
 * was, {@code quantization_config} with {@code linear_weights_not_to_quantize} listing the float weights, as
 * {@code convert_to_hf.py} lists them); the float weights keep their dtype rather than being cast to float16. Memory:
 * one block's weights plus the calibration activations (inputs and targets); on failure nothing is left behind.
 */
public final class AqlmCheckpointQuantizer {
    /** Progress of a run. */
    public interface Listener {
        /** After each Adam step on linear {@code module}, with {@code done} of {@code total} linears finished. */
        void step(String module, int done, int total, double relativeError);

        /** When linear {@code module} is quantized, the {@code done}-th of {@code total}, with its final error. */
        default void finished(String module, int done, int total, double relativeError) {}

        /** After each epoch of block {@code layer}'s fine-tune. */
        default void tuned(int layer, int epoch, double loss) {}
    }

    /** What a run did. */
    public record Report(int linears, long parameters, double bitsPerParameter, double meanRelativeError) {}

    private final AqlmQuantizer layers;
    private final AqlmBlockTuner tuner;
    private final long seed;
    private final long maxShardBytes;
    private final int forwardBatch;

    private AqlmCheckpointQuantizer(Builder b) {
        this.layers = b.layers;
        this.tuner = b.tuner;
        this.seed = b.seed;
        this.maxShardBytes = b.maxShardBytes;
        this.forwardBatch = b.forwardBatch;
    }

    /** A builder quantizing each linear with {@code layers}. */
    public static Builder builder(AqlmQuantizer layers) {
        return new Builder(layers);
    }

    /**
     * Quantizes {@code source} into {@code target} (which must not exist or be empty) with the calibration
     * {@code sequences} (token ids, all of one length).
     *
     * @throws ModelException one line naming what is wrong; nothing is left at {@code target}
     */
    public Report quantize(Path source, Path target, List<int[]> sequences, Listener listener) throws ModelException {
        ObjectNode json = ModelFiles.readConfig(source);
        if (json.has("quantization_config")) {
            throw new ModelException(source.resolve("config.json")
                    + ": the model is already quantized (quantization_config present)");
        }
        DecoderConfig config = ModelFamilies.read(source.resolve("config.json"));
        checkSequences(sequences, config);
        AqlmFormat format = new AqlmFormat(layers.scheme());
        for (String name : config.linearNames()) {
            long[] inOut = config.inOut(name);
            String problem = layers.scheme().shapeProblem(inOut[1], inOut[0]);
            if (problem != null) {
                throw new ModelException(source.resolve("config.json") + ": " + name + " cannot take AQLM "
                        + layers.scheme() + ": " + problem);
            }
        }
        try (SafetensorsReader reader = SafetensorsReader.open(source);
                OutputDirectory out = OutputDirectory.create(target);
                NDManager manager = NDManager.newBaseManager()) {
            ModelLoader.checkTensors(config, reader, null);
            Report report;
            List<String> floatWeights = new ArrayList<>();
            try (SafetensorsWriter writer = SafetensorsWriter.builder(out.path()).optMaxShardBytes(maxShardBytes).build()) {
                report = run(config, reader, writer, manager, sequences, floatWeights, listener);
            }
            ObjectNode q = format.quantizationConfig(json.path("torch_dtype").asText("float32"));
            ArrayNode names = q.putArray("linear_weights_not_to_quantize");
            floatWeights.forEach(names::add);
            json.set("quantization_config", q);
            ModelFiles.writeConfig(out.path(), json);
            ModelFiles.copyCompanionFiles(source, out.path());
            out.commit();
            return report;
        } catch (IOException e) {
            throw new ModelException(target + ": cannot write the quantized model: " + e.getMessage(), e);
        }
    }

    private static void checkSequences(List<int[]> sequences, DecoderConfig config) throws ModelException {
        if (sequences.isEmpty()) {
            throw new ModelException("AQLM calibration needs at least one sequence");
        }
        int length = sequences.get(0).length;
        for (int[] s : sequences) {
            if (s.length != length) {
                throw new ModelException("calibration sequences must all have one length, got " + length + " and "
                        + s.length);
            }
            for (int id : s) {
                if (id < 0 || id >= config.vocabSize()) {
                    throw new ModelException("calibration token id " + id + " is outside the vocabulary of "
                            + config.vocabSize());
                }
            }
        }
    }

    private Report run(DecoderConfig config, SafetensorsReader reader, SafetensorsWriter writer, NDManager manager,
            List<int[]> sequences, List<String> floatWeights, Listener listener) throws ModelException {
        int n = sequences.size();
        int length = sequences.get(0).length;
        NDArray hidden = embed(reader, manager, sequences, config);
        writer.addFrom(reader, "model.embed_tokens.weight");
        NDArray positions = manager.arange(0f, (float) length, 1f, DataType.FLOAT32).reshape(1, length);
        AttentionContext context = AttentionContext.of(config, positions, 0, null);
        ModelLoader dense = ModelLoader.builder().build();
        int total = config.numHiddenLayers() * config.linearNames().size();
        int done = 0;
        long parameters = 0;
        double bits = 0;
        double errors = 0;
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            try (NDManager blockArrays = manager.newSubManager()) {
                DecoderBlock block = dense.block(config, reader, null, l, blockArrays);
                Map<String, XtxRecorder> recorders = new LinkedHashMap<>();
                for (String name : config.linearNames()) {
                    XtxRecorder r = new XtxRecorder(block.linear(name), blockArrays);
                    recorders.put(name, r);
                    block.setLinear(name, r);
                }
                NDArray targets = forward(block, hidden, context, blockArrays);
                Map<String, AqlmTensor> tensors = new LinkedHashMap<>();
                for (String name : config.linearNames()) {
                    String module = p + name;
                    long[] inOut = config.inOut(name);
                    float[] weight = reader.floats(module + ".weight");
                    int finished = done;
                    AqlmQuantizer.Result result;
                    try (NDArray xtx = recorders.get(name).meanXtx()) {
                        result = layers.quantize(weight, (int) inOut[1], (int) inOut[0], xtx, seed * 1_000_003L + done,
                                (epoch, step, rel) -> listener.step(module, finished, total, rel));
                    }
                    tensors.put(name, result.tensor());
                    done++;
                    listener.finished(module, done, total, result.relativeError());
                    parameters += inOut[0] * inOut[1];
                    bits += result.tensor().bitsPerParameter() * inOut[0] * inOut[1];
                    errors += result.relativeError();
                    block.setLinear(name, recorders.get(name).inner());
                    recorders.get(name).close();
                }
                if (tuner.epochs() > 0) {
                    tensors = tune(block, tensors, hidden, targets, context, blockArrays, l, listener);
                }
                for (String name : config.linearNames()) {
                    LinearLayer old = block.setLinear(name, new QuantizedLinear(
                            NdAqlmTensor.upload(tensors.get(name), blockArrays), null));
                    old.close();
                }
                targets.close();
                NDArray next = forward(block, hidden, context, blockArrays);
                next.attach(manager);
                hidden.close();
                hidden = next;
                writeBlock(config, reader, writer, p, tensors, floatWeights);
            }
        }
        hidden.close();
        context.close();
        writer.addFrom(reader, "model.norm.weight");
        floatWeights.add("model.embed_tokens.weight");
        floatWeights.add("model.norm.weight");
        if (reader.contains("lm_head.weight")) {
            writer.addFrom(reader, "lm_head.weight");
        }
        floatWeights.add("lm_head.weight");
        return new Report(done, parameters, bits / parameters, errors / done);
    }

    /** The block's codebooks and scales trained towards its original outputs; the tuned tensors. */
    private Map<String, AqlmTensor> tune(DecoderBlock block, Map<String, AqlmTensor> tensors, NDArray inputs,
            NDArray targets, AttentionContext context, NDManager arrays, int layer, Listener listener) {
        List<NdAqlmTensor> trainable = new ArrayList<>();
        Map<String, LinearLayer> dense = new LinkedHashMap<>();
        for (String name : block.linearNames()) {
            NdAqlmTensor t = NdAqlmTensor.trainable(tensors.get(name), arrays);
            trainable.add(t);
            dense.put(name, block.setLinear(name, new QuantizedLinear(t, null)));
        }
        tuner.tune(trainable, x -> block.forward(x, context, null), inputs, targets,
                (epoch, loss) -> listener.tuned(layer, epoch, loss));
        Map<String, AqlmTensor> tuned = new LinkedHashMap<>();
        for (int i = 0; i < block.linearNames().size(); i++) {
            String name = block.linearNames().get(i);
            tuned.put(name, trainable.get(i).toTensor());
            block.setLinear(name, dense.get(name)).close();
        }
        return tuned;
    }

    /** The block applied to every sequence, {@code forwardBatch} at a time, without a graph. */
    private NDArray forward(DecoderBlock block, NDArray hidden, AttentionContext context, NDManager arrays) {
        long n = hidden.getShape().get(0);
        NDList parts = new NDList();
        for (long from = 0; from < n; from += forwardBatch) {
            try (NDScope scope = new NDScope()) {
                NDArray out = block.forward(hidden.get(from + ":" + Math.min(n, from + forwardBatch)), context, null);
                NDScope.unregister(out);
                out.attach(arrays);
                parts.add(out);
            }
        }
        NDArray all = parts.size() == 1 ? parts.get(0) : NDArrays.concat(parts, 0);
        if (parts.size() > 1) {
            parts.close();
        }
        return all;
    }

    /** Writes block {@code p}'s tensors in checkpoint order: the first norm, the projections, the other norms. */
    private static void writeBlock(DecoderConfig config, SafetensorsReader reader, SafetensorsWriter writer, String p,
            Map<String, AqlmTensor> tensors, List<String> floatWeights) throws ModelException {
        List<String> norms = List.copyOf(config.normShapes().keySet());
        writer.addFrom(reader, p + norms.get(0) + ".weight");
        for (Map.Entry<String, AqlmTensor> e : tensors.entrySet()) {
            String module = p + e.getKey();
            AqlmFormat.stored(e.getValue()).write(writer, module, null);
            if (reader.contains(module + ".bias")) {
                writer.addFrom(reader, module + ".bias");
                floatWeights.add(module + ".bias");
            }
        }
        for (String norm : norms.subList(1, norms.size())) {
            writer.addFrom(reader, p + norm + ".weight");
        }
        for (String norm : norms) {
            floatWeights.add(p + norm + ".weight");
        }
    }

    private static NDArray embed(SafetensorsReader reader, NDManager manager, List<int[]> sequences,
            DecoderConfig config) throws ModelException {
        int length = sequences.get(0).length;
        int[] ids = new int[sequences.size() * length];
        for (int s = 0; s < sequences.size(); s++) {
            System.arraycopy(sequences.get(s), 0, ids, s * length, length);
        }
        try (NDManager m = manager.newSubManager()) {
            NDArray table = m.create(reader.floats("model.embed_tokens.weight"),
                    new Shape(config.vocabSize(), config.hiddenSize()));
            NDArray rows = Embedding.embedding(m.create(ids, new Shape(sequences.size(), length)), table,
                    SparseFormat.DENSE).singletonOrThrow().mul((float) config.embeddingScale());
            rows.attach(manager);
            return rows;
        }
    }

    /** Settings of an {@link AqlmCheckpointQuantizer}. */
    public static final class Builder {
        private final AqlmQuantizer layers;
        private AqlmBlockTuner tuner = AqlmBlockTuner.builder().build();
        private long seed;
        private long maxShardBytes = 5_000_000_000L;
        private int forwardBatch = 8;

        private Builder(AqlmQuantizer layers) {
            this.layers = layers;
        }

        /** The block fine-tune (default: the repository's, 5 epochs; 0 epochs turns it off). */
        public Builder optTuner(AqlmBlockTuner value) {
            this.tuner = value;
            return this;
        }

        /** The seed every random choice derives from (default 0, the repository's). */
        public Builder optSeed(long value) {
            this.seed = value;
            return this;
        }

        /** Largest output shard in bytes (default 5 GB). */
        public Builder optMaxShardBytes(long value) {
            this.maxShardBytes = value;
            return this;
        }

        /** Sequences run through a block at once (default 8). */
        public Builder optForwardBatch(int value) {
            this.forwardBatch = Math.max(1, value);
            return this;
        }

        /** The quantizer. */
        public AqlmCheckpointQuantizer build() {
            return new AqlmCheckpointQuantizer(this);
        }
    }
}
