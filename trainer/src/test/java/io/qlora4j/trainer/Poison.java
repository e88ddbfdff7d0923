package io.qlora4j.trainer;

import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Rewrites a safetensors file with one value NaN, as a diverged or corrupted run would leave it. */
public final class Poison {
    private Poison() {}

    /** Rewrites {@code file} (named {@code baseName}.safetensors) with its first tensor's first value NaN; returns that tensor's name. */
    public static String firstValue(Path file, String baseName) throws Exception {
        List<TensorInfo> infos;
        List<float[]> values = new ArrayList<>();
        try (SafetensorsReader reader = SafetensorsReader.open(file)) {
            infos = reader.tensors();
            for (TensorInfo info : infos) {
                values.add(reader.floats(info.name()));
            }
        }
        values.get(0)[0] = Float.NaN;
        Files.delete(file);
        try (SafetensorsWriter writer = SafetensorsWriter.builder(file.getParent()).optBaseName(baseName).build()) {
            for (int i = 0; i < infos.size(); i++) {
                writer.addFloats(infos.get(i).name(), DType.F32, infos.get(i).shape(), values.get(i));
            }
        }
        return infos.get(0).name();
    }
}
