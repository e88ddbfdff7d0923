package io.qlora4j.model.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.checkpoint.ModelFiles;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * The registry of base formats: the one place that turns job keys ({@link #fromKeys}) or a checkpoint's
 * {@code quantization_config} ({@link #stored}, {@link #forModel}) into a {@link BaseFormat}. The loader,
 * {@code quantize}, {@code export}, the adapter record and {@code inspect} all get their format from here.
 *
 * <p>LLaMA-Factory's on-the-fly menu ({@code bnb}/{@code bitsandbytes} 4 and 8 bits, {@code hqq} 1-6 and 8 bits,
 * {@code eetq} 8 bits) is known here, so a method or bit width of that menu that no registration implements yet is
 * refused by name as not implemented, never as unknown.
 *
 * <p>To add a format:
 * <ol>
 *   <li>write the numerics (quantize, pack, host dequantize, and a {@link io.qlora4j.quant.DeviceWeight} that
 *       dequantizes with NDArray ops) in a {@code quant} subpackage, tested against hand-derived vectors;</li>
 *   <li>write one class implementing {@link BaseFormat} (and its {@link StoredWeight}, uploading as
 *       {@code new QuantizedLinear(deviceWeight, bias)}) with a public static {@link FormatRegistration};</li>
 *   <li>add that registration to {@code REGISTERED} below.</li>
 * </ol>
 * Its job keys, its checkpoints, {@code quantize}, {@code export}, adapters and {@code inspect} then work with no
 * other change.
 */
public final class BaseFormats {
    /** Full-precision weights (float32 on the device): the format when no {@code quantization_bit} is given. */
    public static final BaseFormat DENSE = DenseFormat.INSTANCE;
    /** QLoRA's format and LLaMA-Factory's default for 4 bits: NF4, blocksize 64, double-quantized scales. */
    public static final BaseFormat QLORA = Bnb4bitFormat.QLORA;

    /** Every registered family, in the order messages and {@link #menu()} list them. */
    private static final List<FormatRegistration> REGISTERED = List.of(
            Bnb4bitFormat.REGISTRATION,
            Bnb8bitFormat.REGISTRATION,
            CvxqFormat.REGISTRATION,
            HqqFormat.REGISTRATION,
            EetqFormat.REGISTRATION,
            AqlmFormat.REGISTRATION,
            GptqFormat.REGISTRATION,
            AwqFormat.REGISTRATION);

    /** LLaMA-Factory's on-the-fly methods and the bit widths it accepts for each. */
    private static final Map<String, List<Integer>> LLAMA_FACTORY_MENU = Map.of(
            "bnb", List.of(4, 8),
            "bitsandbytes", List.of(4, 8),
            "hqq", List.of(1, 2, 3, 4, 5, 6, 8),
            "eetq", List.of(8));
    private static final String DEFAULT_METHOD = "bnb";

    static {
        Set<String> names = new LinkedHashSet<>();
        for (FormatRegistration r : REGISTERED) {
            for (FormatOption o : r.options()) {
                if (!names.add(o.name())) {
                    throw new IllegalStateException("base format option " + o.name() + " is declared twice");
                }
            }
        }
    }

    private BaseFormats() {}

    /**
     * The format {@code keys} choose: dense without {@code quantization_bit}, else the registration whose method
     * and bits match (method {@code bnb} when none is given).
     *
     * @throws ModelException one line naming the key: a method or bit width qlora4j does not implement yet (by
     *     name), one no tool offers, or an option value the format cannot take
     */
    public static BaseFormat fromKeys(FormatKeys keys) throws ModelException {
        if (keys.bits() == null) {
            return DENSE;
        }
        int bits = keys.bits();
        String method = keys.method() == null ? DEFAULT_METHOD : keys.method().trim().toLowerCase(Locale.ROOT);
        for (FormatRegistration r : REGISTERED) {
            if (r.chosenBy(method, bits)) {
                try {
                    return r.fromKeys().create(keys);
                } catch (IllegalArgumentException e) {
                    throw new ModelException(e.getMessage(), e);
                }
            }
        }
        Set<Integer> implemented = new TreeSet<>();
        REGISTERED.stream().filter(r -> r.methods().contains(method)).forEach(r -> implemented.addAll(r.bits()));
        List<Integer> menu = LLAMA_FACTORY_MENU.getOrDefault(method, List.of());
        if (implemented.isEmpty() && menu.isEmpty()) {
            List<String> planned = plannedMethods();
            throw new ModelException(FormatKeys.METHOD + " '" + method + "' is not a base-format method (implemented: "
                    + String.join(", ", methods()) + (planned.isEmpty() ? "" : "; not yet: " + String.join(", ", planned))
                    + ")");
        }
        if (implemented.isEmpty()) {
            throw new ModelException(FormatKeys.METHOD + " " + method + " is not implemented yet (implemented: "
                    + String.join(", ", methods()) + ")");
        }
        if (menu.contains(bits)) {
            throw new ModelException(FormatKeys.METHOD + " " + method + " with " + FormatKeys.BITS + " " + bits
                    + " is not implemented yet (implemented for " + method + ": " + join(implemented) + ")");
        }
        Set<Integer> allowed = new TreeSet<>(implemented);
        allowed.addAll(menu);
        throw new ModelException(FormatKeys.BITS + " " + bits + " is not supported by " + FormatKeys.METHOD + " "
                + method + " (allowed: " + join(allowed) + ")");
    }

    /**
     * The format a checkpoint's {@code quantization_config} describes; {@code where} (the config file) prefixes
     * errors.
     *
     * @throws ModelException naming {@code quant_method} and what qlora4j reads, when no registration recognises it
     */
    public static BaseFormat fromQuantizationConfig(JsonNode quantizationConfig, String where) throws ModelException {
        if (!quantizationConfig.isObject()) {
            throw new ModelException(where + ": quantization_config must be an object with quant_method, not "
                    + quantizationConfig);
        }
        if (!quantizationConfig.path("quant_method").isTextual()) {
            throw new ModelException(where + ": quantization_config has no quant_method (a string such as"
                    + " bitsandbytes, gptq, awq)");
        }
        for (FormatRegistration r : REGISTERED) {
            try {
                BaseFormat f = r.fromConfig().recognise(quantizationConfig);
                if (f != null) {
                    return f;
                }
            } catch (IllegalArgumentException e) {
                throw new ModelException(where + ": quantization_config: " + e.getMessage(), e);
            }
        }
        String method = quantizationConfig.path("quant_method").asText("");
        throw new ModelException(where + ": quantization_config quant_method '" + method + "' is not supported"
                + " (qlora4j loads pre-quantized " + REGISTERED.stream().filter(r -> r.checkpointRefusal() == null)
                        .map(FormatRegistration::name).collect(Collectors.joining(", ")) + ")");
    }

    /**
     * Why qlora4j writes no checkpoint in {@code format} ({@link FormatRegistration#checkpointRefusal}), or null when
     * it writes one: {@code quantize} and {@code export} ask before any work.
     */
    public static String checkpointRefusal(BaseFormat format) {
        for (FormatRegistration r : REGISTERED) {
            if (r.chosenBy(format.method(), format.bits())) {
                return r.checkpointRefusal();
            }
        }
        return null;
    }

    /**
     * The format {@code modelDir}'s config.json says its linear weights are stored in ({@code quantization_config}),
     * or null for a float checkpoint.
     *
     * @throws ModelException when config.json is missing or unreadable, or its quantization_config is not supported
     */
    public static BaseFormat stored(Path modelDir) throws ModelException {
        ObjectNode config = ModelFiles.readConfig(modelDir);
        JsonNode q = config.get("quantization_config");
        return q == null || q.isNull() ? null : fromQuantizationConfig(q, modelDir.resolve("config.json").toString());
    }

    /**
     * The format {@code modelDir}'s block linears end up in when a job asks for {@code requested}: the checkpoint's
     * own when it is pre-quantized, {@code requested} otherwise. A pre-quantized checkpoint loaded with job keys
     * that name another method or bit width is refused, naming both.
     */
    public static BaseFormat forModel(Path modelDir, BaseFormat requested) throws ModelException {
        BaseFormat stored = stored(modelDir);
        if (stored == null) {
            return requested;
        }
        if (requested != DENSE && !(requested.method().equals(stored.method()) && requested.bits() == stored.bits())) {
            throw new ModelException(modelDir.resolve("config.json") + ": the checkpoint is stored in "
                    + stored.describe() + " (quantization_config), but the job asks for " + FormatKeys.METHOD + " "
                    + requested.method() + ", " + FormatKeys.BITS + " " + requested.bits()
                    + "; leave quantization_bit unset to load the checkpoint as stored");
        }
        return stored;
    }

    /** Every {@code quantization_method} spelling a registration implements. */
    public static List<String> methods() {
        Set<String> names = new LinkedHashSet<>();
        REGISTERED.forEach(r -> names.addAll(r.methods()));
        return List.copyOf(names);
    }

    /** LLaMA-Factory's methods that no registration implements yet. */
    public static List<String> plannedMethods() {
        List<String> methods = methods();
        return new TreeSet<>(LLAMA_FACTORY_MENU.keySet()).stream().filter(m -> !methods.contains(m)).toList();
    }

    /** Every format option of every registration, each once. */
    public static List<FormatOption> options() {
        List<FormatOption> all = new ArrayList<>();
        REGISTERED.forEach(r -> all.addAll(r.options()));
        return all;
    }

    /**
     * The default format of every registered method and bit width (options at their defaults) that quantizes on the
     * fly ({@link BaseFormat#quantizesOnTheFly}), in registration order: what {@code inspect} lists and what a
     * quality table runs over.
     */
    public static List<BaseFormat> menu() {
        Map<String, BaseFormat> out = new LinkedHashMap<>();
        for (FormatRegistration r : REGISTERED) {
            if (r.methods().isEmpty()) {
                continue;
            }
            for (int bits : r.bits()) {
                BaseFormat f = r.fromKeys().create(new FormatKeys(r.methods().get(0), bits, Map.of()));
                if (f.quantizesOnTheFly()) {
                    out.putIfAbsent(f.describe(), f);
                }
            }
        }
        return List.copyOf(out.values());
    }

    private static String join(Set<Integer> values) {
        return values.stream().map(String::valueOf).collect(Collectors.joining(", "));
    }
}
