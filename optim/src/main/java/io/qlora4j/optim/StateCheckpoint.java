package io.qlora4j.optim;

import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Reads checkpointed optimizer state back: groups the keys by parameter, tells each parameter's
 * number format from its key suffixes, and checks that nothing is missing, unknown or mixed.
 */
final class StateCheckpoint {

    /** The suffix of a parameter's step count, a float32 scalar as torch stores it. */
    static final String STEP = "step";

    private static final List<PageFormat> FORMATS =
            List.of(Float32Format.INSTANCE, Blockwise8BitFormat.INSTANCE);

    /**
     * One parameter's saved state.
     *
     * @param step its step count
     * @param format the number format its keys are in
     * @param tensors its state tensors by key suffix
     */
    record Saved(int step, PageFormat format, Map<String, StateTensor> tensors) {

        /** The parameter's shape, as the state tensors give it. */
        Shape shape(String param) {
            return PageTensors.shape(param, format, tensors);
        }
    }

    private StateCheckpoint() {}

    /** The checkpoint tensors of each parameter, in the order the parameters first appear. */
    static Map<String, Saved> parse(Map<String, StateTensor> state) {
        List<String> suffixes = new ArrayList<>(List.of(STEP));
        FORMATS.forEach(format -> suffixes.addAll(format.suffixes()));
        // longest first, so "w.exp_avg.codes" is w's codes, not a parameter "w.exp_avg.codes"'s
        // state under some shorter suffix
        suffixes.sort(Comparator.comparingInt(String::length).reversed());
        Map<String, Map<String, StateTensor>> grouped = new LinkedHashMap<>();
        for (Map.Entry<String, StateTensor> entry : state.entrySet()) {
            String key = entry.getKey();
            String suffix = suffixes.stream()
                    .filter(s -> key.endsWith("." + s) && key.length() > s.length() + 1)
                    .findFirst()
                    .orElseThrow(() -> new IllegalArgumentException(
                            "optimizer state key '" + key + "' is none of "
                                    + suffixes.stream()
                                            .sorted(Comparator.comparingInt(String::length))
                                            .map(s -> "<param>." + s)
                                            .collect(Collectors.joining(", "))));
            String param = key.substring(0, key.length() - suffix.length() - 1);
            grouped.computeIfAbsent(param, k -> new LinkedHashMap<>()).put(suffix, entry.getValue());
        }
        Map<String, Saved> saved = new LinkedHashMap<>();
        grouped.forEach((param, tensors) -> saved.put(param, saved(param, tensors)));
        return saved;
    }

    private static Saved saved(String param, Map<String, StateTensor> tensors) {
        StateTensor step = tensors.remove(STEP);
        if (step == null) {
            throw missing(param + "." + STEP);
        }
        List<PageFormat> present = FORMATS.stream()
                .filter(format -> format.suffixes().stream().anyMatch(tensors::containsKey))
                .collect(Collectors.toList());
        if (present.size() > 1) {
            throw new IllegalArgumentException(
                    "optimizer state of '" + param + "' mixes float32 and 8-bit keys: "
                            + tensors.keySet());
        }
        PageFormat format = present.isEmpty() ? FORMATS.get(0) : present.get(0);
        for (String suffix : format.suffixes()) {
            if (!tensors.containsKey(suffix)) {
                throw missing(param + "." + suffix);
            }
        }
        return new Saved(stepCount(param + "." + STEP, step), format, tensors);
    }

    private static int stepCount(String key, StateTensor tensor) {
        float value = tensor.values().length == 1 ? tensor.values()[0] : Float.NaN;
        if (!(value >= 0 && value == Math.rint(value))) {
            throw new IllegalArgumentException(
                    "optimizer state '" + key + "' must be one non-negative whole number, got "
                            + tensor.values().length + " values starting "
                            + (tensor.values().length > 0 ? tensor.values()[0] : "nothing"));
        }
        return (int) value;
    }

    private static IllegalArgumentException missing(String key) {
        return new IllegalArgumentException("optimizer state lacks '" + key + "'");
    }
}
