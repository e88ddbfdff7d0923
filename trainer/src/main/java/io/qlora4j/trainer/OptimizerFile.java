package io.qlora4j.trainer;

import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.optim.StateTensor;
import io.qlora4j.trainer.config.ConfigException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code optimizer.safetensors}: the AdamW state as float32 tensors keyed {@code <param>.exp_avg},
 * {@code <param>.exp_avg_sq} and {@code <param>.step} (a scalar, as torch keeps it), or for 8-bit state
 * {@code <param>.exp_avg.codes}, {@code .exp_avg.absmax}, {@code .exp_avg_sq.codes}, {@code .exp_avg_sq.absmax},
 * so a resumed run continues with exactly the state it stopped with.
 */
final class OptimizerFile {
    /** The file name inside a checkpoint. */
    static final String FILE = "optimizer.safetensors";

    private OptimizerFile() {}

    /** Writes {@code state} into {@code dir}. */
    static void write(Path dir, Map<String, StateTensor> state) throws ModelException {
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).optBaseName("optimizer").build()) {
            for (Map.Entry<String, StateTensor> e : state.entrySet()) {
                writer.addFloats(e.getKey(), DType.F32, e.getValue().shape().getShape(), e.getValue().values());
            }
        }
    }

    /**
     * Reads the state a {@link #write} saved in {@code dir}; a checkpoint saved with {@code save_only_model} has
     * none and cannot be resumed, as in transformers.
     */
    static Map<String, StateTensor> read(Path dir) throws ModelException, ConfigException {
        if (!Files.isRegularFile(dir.resolve(FILE))) {
            throw new ConfigException("resume_from_checkpoint: " + dir + " holds no optimizer state (saved with"
                    + " save_only_model: true) and cannot be resumed; start a new run from its weights instead");
        }
        Map<String, StateTensor> state = new LinkedHashMap<>();
        try (SafetensorsReader reader = SafetensorsReader.open(dir.resolve(FILE))) {
            for (TensorInfo info : reader.tensors()) {
                state.put(info.name(), new StateTensor(new Shape(info.shape()), reader.floats(info.name())));
            }
        }
        return state;
    }
}
