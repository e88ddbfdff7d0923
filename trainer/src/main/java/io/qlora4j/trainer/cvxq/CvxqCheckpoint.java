package io.qlora4j.trainer.cvxq;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.checkpoint.ModelFiles;
import io.qlora4j.model.checkpoint.OutputDirectory;
import io.qlora4j.model.decoder.ModelFamily;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.format.CvxqFormat;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Writes a CVXQ checkpoint (docs/CVXQ-FORMAT.md): the source model's tensors copied byte for byte except the block
 * projections, which become CVXQ entries, and their biases, which become the corrected {@code b'} (float16);
 * config.json sets the family's keys that declare those biases ({@link ModelFamily#biasKey}: Llama's
 * {@code attention_bias} and {@code mlp_bias}, the {@code attention_bias} of Qwen3 and Gemma) and gains the CVXQ
 * {@code quantization_config}. A bias the family cannot declare stays in the file: the CVXQ format keeps it
 * ({@code BaseFormat.keepsBiases}). Nothing is left at the target on failure.
 */
public final class CvxqCheckpoint {
    private CvxqCheckpoint() {}

    /**
     * Writes {@code result} for the model at {@code source} into {@code target} (absent or empty), in shards of at most
     * {@code maxShardBytes}; returns the bytes written.
     */
    public static long write(Path source, Path target, CvxqCalibration.Result result, int groupSize,
            long maxShardBytes) throws ModelException {
        ObjectNode config = ModelFiles.readConfig(source);
        ModelFamily family = ModelFamilies.read(source.resolve("config.json")).family();
        Map<String, CvxqCalibration.Layer> byWeight = new HashMap<>();
        for (CvxqCalibration.Layer l : result.layers()) {
            byWeight.put(l.prefix() + ".weight", l);
        }
        try (SafetensorsReader reader = SafetensorsReader.open(source);
                OutputDirectory out = OutputDirectory.create(target)) {
            long bytes;
            try (SafetensorsWriter writer = SafetensorsWriter.builder(out.path()).optMaxShardBytes(maxShardBytes)
                    .build()) {
                for (TensorInfo info : reader.tensors()) {
                    String name = info.name();
                    CvxqCalibration.Layer layer = byWeight.get(name);
                    if (layer != null) {
                        CvxqFormat.weight(layer.weight()).write(writer, layer.prefix(), "float32");
                    } else if (!(name.endsWith(".bias") && byWeight.containsKey(name.replaceFirst("bias$", "weight")))) {
                        writer.addFrom(reader, name);
                    }
                }
                for (CvxqCalibration.Layer l : result.layers()) {
                    if (l.bias() != null) {
                        writer.addFloats(l.prefix() + ".bias", DType.F16, new long[] {l.bias().length}, l.bias());
                        String key = family.biasKey(l.prefix().split("\\.", 4)[3]);
                        if (key != null) {
                            config.put(key, true);
                        }
                    }
                }
                bytes = writer.totalBytes();
            }
            config.set("quantization_config",
                    new CvxqFormat(result.bitsPerParameter(), groupSize).quantizationConfig("float32"));
            ModelFiles.writeConfig(out.path(), config);
            ModelFiles.copyCompanionFiles(source, out.path());
            out.commit();
            return bytes;
        } catch (IOException e) {
            throw new ModelException(target + ": cannot write the CVXQ model: " + e.getMessage(), e);
        }
    }
}
