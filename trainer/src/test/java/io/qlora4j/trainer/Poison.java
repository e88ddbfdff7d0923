package io.qlora4j.trainer;

import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/** Rewrites a safetensors file as a diverged, corrupted or partial save would leave it. */
public final class Poison {
    private Poison() {}

    /** Rewrites {@code file} (named {@code baseName}.safetensors) with its first tensor's first value NaN; returns that tensor's name. */
    public static String firstValue(Path file, String baseName) throws Exception {
        String[] first = new String[1];
        rewrite(file, baseName, tensors -> {
            first[0] = tensors.keySet().iterator().next();
            tensors.get(first[0]).getValue()[0] = Float.NaN;
        });
        return first[0];
    }

    /** Rewrites {@code file} (named {@code baseName}.safetensors) without the tensors whose names contain {@code part}. */
    public static void withoutTensors(Path file, String baseName, String part) throws Exception {
        rewrite(file, baseName, tensors -> tensors.keySet().removeIf(name -> name.contains(part)));
    }

    /** Reads every tensor as float32 (name to shape and values), lets {@code change} edit them, writes them back. */
    private static void rewrite(Path file, String baseName, Consumer<Map<String, Map.Entry<long[], float[]>>> change)
            throws Exception {
        Map<String, Map.Entry<long[], float[]>> tensors = new LinkedHashMap<>();
        try (SafetensorsReader reader = SafetensorsReader.open(file)) {
            for (TensorInfo info : reader.tensors()) {
                tensors.put(info.name(), Map.entry(info.shape(), reader.floats(info.name())));
            }
        }
        change.accept(tensors);
        Files.delete(file);
        try (SafetensorsWriter writer = SafetensorsWriter.builder(file.getParent()).optBaseName(baseName).build()) {
            for (Map.Entry<String, Map.Entry<long[], float[]>> t : tensors.entrySet()) {
                writer.addFloats(t.getKey(), DType.F32, t.getValue().getKey(), t.getValue().getValue());
            }
        }
    }
}
