package io.qlora4j.adapters;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.qlora4j.model.ModelException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * PEFT's {@code adapter_config.json} for LoRA: written with PEFT's fields, sorted keys and Python's
 * {@code json.dumps(indent=2)} layout; read tolerantly (missing keys take PEFT's defaults, unknown keys are
 * ignored) but refusing, in one line naming the key, what qlora4j cannot reproduce.
 *
 * <p>{@code target_modules} follows PEFT: a list entry selects a module whose path equals it or ends with
 * {@code "." + entry}; a string is a regular expression the whole path must match ({@code all-linear}: every
 * linear layer). {@code rank_pattern} and {@code alpha_pattern} keys select a module when
 * {@code (.*\.)?(key)} matches its whole path, the first matching key winning, as PEFT's
 * {@code get_pattern_key}. {@code fan_in_fan_out} is accepted and ignored: it only describes the layout of a
 * Conv1D base weight for merges, and PEFT itself resets it to false for {@code nn.Linear} layers such as
 * Llama's; the LoRA matrices are {@code [r, in]} and {@code [out, r]} either way. Fields that change which modules
 * or layers are adapted or how ({@code layers_to_transform}, {@code exclude_modules}, {@code target_parameters},
 * {@code trainable_token_indices}, {@code use_qalora}, {@code alora_invocation_tokens}, a task type other than
 * {@code CAUSAL_LM}) are refused when set. The file holds PEFT's keys only;
 * what qlora4j records besides goes to {@link BaseFormatRecord}.
 */
record AdapterConfig(int r, double alpha, double dropout, boolean useRslora, AdapterVariant variant, AdapterInit init,
        List<String> targetList, Pattern targetRegex, Map<String, Integer> rankPattern, Map<String, Double> alphaPattern) {

    /** The file name inside an adapter directory. */
    static final String FILE = "adapter_config.json";

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS);
    private static final ObjectWriter PYTHON_STYLE = JSON.writer(new DefaultPrettyPrinter(Separators.createDefaultInstance()
                    .withObjectFieldValueSpacing(Separators.Spacing.AFTER)
                    .withObjectEmptySeparator("")
                    .withArrayEmptySeparator(""))
            .withObjectIndenter(new DefaultIndenter("  ", "\n"))
            .withArrayIndenter(new DefaultIndenter("  ", "\n")));

    /**
     * The fields PEFT writes for a LoRA adapter, for one of our adapters on the modules named {@code targetModules}
     * (short names), sorted by key.
     */
    static Map<String, Object> fields(LoraSettings settings, List<String> targetModules, String baseModel,
            Map<String, Integer> rankPattern, Map<String, Double> alphaPattern) {
        Map<String, Object> alphas = new TreeMap<>();
        alphaPattern.forEach((path, alpha) -> alphas.put(path, number(alpha)));
        Map<String, Object> f = new TreeMap<>();
        f.put("alpha_pattern", alphas);
        f.put("base_model_name_or_path", baseModel);
        f.put("bias", "none");
        f.put("fan_in_fan_out", false);
        f.put("inference_mode", true);
        f.put("init_lora_weights", settings.init().peftValue());
        f.putAll(settings.init().configFields());
        f.put("layers_to_transform", null);
        f.put("lora_alpha", number(settings.alpha()));
        f.put("lora_dropout", settings.dropout());
        f.put("modules_to_save", null);
        f.put("peft_type", "LORA");
        f.put("r", settings.rank());
        f.put("rank_pattern", new TreeMap<>(rankPattern));
        f.put("target_modules", targetModules.stream().sorted().toList());
        f.put("task_type", "CAUSAL_LM");
        for (AdapterVariant v : AdapterVariants.all()) {
            if (v.peftFlag() != null) {
                f.put(v.peftFlag(), v == settings.variant());
            }
        }
        f.put("use_rslora", settings.useRslora());
        return f;
    }

    /** An integral alpha as an integer (PEFT's type for {@code lora_alpha}), any other as a float. */
    private static Object number(double value) {
        return value == Math.rint(value) && Math.abs(value) < 1L << 53 ? (Object) (long) value : (Object) value;
    }

    /** The UTF-8 bytes of {@code fields} as Python's {@code json.dumps(fields, indent=2, sort_keys=True)} lays them out. */
    static byte[] toJson(Map<String, Object> fields) {
        try {
            return PYTHON_STYLE.writeValueAsBytes(fields);
        } catch (IOException e) {
            throw new IllegalArgumentException("adapter config is not serializable to JSON: " + e.getMessage(), e);
        }
    }

    /**
     * The JSON object in {@code file} (an adapter directory's config or record), refused naming the file when it
     * cannot be read, is not JSON, or holds anything but an object, whose keys could not be read from it.
     */
    static JsonNode readObject(Path file) throws ModelException {
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (JacksonException e) {
            throw new ModelException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new ModelException(file + ": cannot read: " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new ModelException(file + ": expected a JSON object");
        }
        return root;
    }

    /** Reads and checks {@code file}; see the class comment for what is accepted. */
    static AdapterConfig read(Path file) throws ModelException {
        JsonNode root = readObject(file);
        Fields f = new Fields(file, root);
        f.refuseUnless("peft_type", n -> n.isTextual() && n.asText().equals("LORA"), "only LORA adapters are supported");
        f.refuseUnless("lora_bias", n -> n.isBoolean() && !n.asBoolean(),
                "trained LoRA biases are not supported (only false)");
        f.refuseUnless("bias", n -> n.isTextual() && n.asText().equals("none"),
                "trained biases are not supported (only \"none\")");
        f.refuseUnless("modules_to_save", n -> n.isArray() && n.isEmpty(),
                "fully trained modules (embeddings, lm_head) are not supported; qlora4j loads LoRA matrices only");
        f.refuseUnless("layer_replication", n -> false, "layer replication is not supported");
        f.refuseUnless("task_type", n -> n.isTextual() && n.asText().equals("CAUSAL_LM"),
                "qlora4j loads adapters of causal language models (CAUSAL_LM) only");
        f.refuseUnless("use_qalora", n -> n.isBoolean() && !n.asBoolean(),
                "QA-LoRA (use_qalora) changes the forward pass and is not supported");
        f.refuseUnless("layers_to_transform", n -> false,
                "adapters on chosen layers only (layers_to_transform) are not supported; every layer of the targets is"
                        + " adapted");
        f.refuseUnless("exclude_modules", n -> n.isContainerNode() && n.isEmpty() || n.isTextual() && n.asText().isEmpty(),
                "exclude_modules is not supported; name the modules in target_modules instead");
        f.refuseUnless("trainable_token_indices", n -> n.isContainerNode() && n.isEmpty(),
                "trained token embeddings (trainable_token_indices) are not supported");
        f.refuseUnless("target_parameters", n -> n.isContainerNode() && n.isEmpty(),
                "adapters on parameters (target_parameters) are not supported; qlora4j adapts linear modules");
        f.refuseUnless("alora_invocation_tokens", n -> false, "activated LoRA (alora_invocation_tokens) is not"
                + " supported");
        int r = f.positiveInt("r", 8);
        double alpha = f.number("lora_alpha", 8);
        f.check(alpha, alpha > 0 && !Double.isInfinite(alpha), "lora_alpha must be a positive number");
        double dropout = f.number("lora_dropout", 0);
        if (!(dropout >= 0 && dropout < 1)) {
            throw new ModelException(file + ": lora_dropout must be in [0, 1), got " + dropout);
        }
        boolean rslora = f.bool("use_rslora", false);
        AdapterVariant variant = f.variant();
        Map<String, Integer> rankPattern = new LinkedHashMap<>();
        for (Map.Entry<String, Double> e : f.patterns("rank_pattern").entrySet()) {
            double v = e.getValue();
            rankPattern.put(e.getKey(), (int) f.check(v, v == Math.rint(v) && v > 0 && v <= Integer.MAX_VALUE,
                    "rank_pattern['" + e.getKey() + "'] must be a positive integer"));
        }
        Map<String, Double> alphaPattern = f.patterns("alpha_pattern");
        for (Map.Entry<String, Double> e : alphaPattern.entrySet()) {
            f.check(e.getValue(), e.getValue() > 0 && !e.getValue().isInfinite(),
                    "alpha_pattern['" + e.getKey() + "'] must be a positive number");
        }
        JsonNode targets = root.get("target_modules");
        List<String> targetList = null;
        Pattern targetRegex = null;
        if (targets != null && targets.isTextual()) {
            targetRegex = f.regex(targets.asText().equals("all-linear") ? ".*" : targets.asText(), "target_modules");
        } else if (targets != null && targets.isArray()) {
            targetList = new ArrayList<>();
            for (JsonNode t : targets) {
                targetList.add(f.text(t, "target_modules entries must be strings"));
            }
        } else if (targets != null && !targets.isNull()) {
            throw new ModelException(file + ": target_modules must be a list of names or a regular expression, got "
                    + targets);
        }
        return new AdapterConfig(r, alpha, dropout, rslora, variant, f.init(), targetList, targetRegex, rankPattern,
                alphaPattern);
    }

    /**
     * Whether the config names its targets ({@code target_modules} set); PEFT saves them resolved, so a config without
     * them was written by hand.
     */
    boolean namesTargets() {
        return targetList != null || targetRegex != null;
    }

    /** Whether {@code target_modules} selects the module at {@code path} (true when the config names none). */
    boolean selects(String path) {
        if (targetRegex != null) {
            return targetRegex.matcher(path).matches();
        }
        return targetList == null || targetList.stream().anyMatch(t -> path.equals(t) || path.endsWith("." + t));
    }

    /** The rank of the module at {@code path}: its {@code rank_pattern} entry, else {@code r}. */
    int rankOf(String path) {
        return rankPattern.getOrDefault(patternKey(rankPattern.keySet(), path), r);
    }

    /** The alpha of the module at {@code path}: its {@code alpha_pattern} entry, else {@code lora_alpha}. */
    double alphaOf(String path) {
        return alphaPattern.getOrDefault(patternKey(alphaPattern.keySet(), path), alpha);
    }

    /**
     * A Python {@code re} expression (PEFT matches target_modules and pattern keys with {@code re}) in Java's syntax:
     * Python's named groups {@code (?P<n>...)} and back references {@code (?P=n)} are spelled {@code (?<n>...)} and
     * {@code \k<n>} in Java; the rest of what PEFT's patterns use is common to both.
     */
    static String javaSyntax(String python) {
        // Java group names are letters and digits only, so each Python name gets one of its own
        Map<String, String> names = new HashMap<>();
        Matcher groups = Pattern.compile("\\(\\?P<(\\w+)>").matcher(python);
        StringBuilder out = new StringBuilder();
        while (groups.find()) {
            String name = names.computeIfAbsent(groups.group(1), n -> "py" + (names.size() + 1));
            groups.appendReplacement(out, Matcher.quoteReplacement("(?<" + name + ">"));
        }
        groups.appendTail(out);
        Matcher references = Pattern.compile("\\(\\?P=(\\w+)\\)").matcher(out.toString());
        StringBuilder java = new StringBuilder();
        while (references.find()) {
            String name = names.getOrDefault(references.group(1), references.group(1));
            references.appendReplacement(java, Matcher.quoteReplacement("\\k<" + name + ">"));
        }
        return references.appendTail(java).toString();
    }

    private static String patternKey(Collection<String> keys, String path) {
        for (String key : keys) {
            if (Pattern.compile("(.*\\.)?(" + javaSyntax(key) + ")").matcher(path).matches()) {
                return key;
            }
        }
        return path;
    }

    /**
     * Checks that every {@code target_modules} entry (or the expression) selects at least one of the model's
     * LoRA-capable module paths, as PEFT refuses a target the model lacks.
     */
    void checkTargets(Path file, Collection<String> modelPaths) throws ModelException {
        String known = TargetModules.shortNames(modelPaths);
        if (targetRegex != null && modelPaths.stream().noneMatch(p -> targetRegex.matcher(p).matches())) {
            throw new ModelException(file + ": target_modules '" + targetRegex.pattern()
                    + "' matches no linear layer of this model (" + known + ")");
        }
        for (String t : targetList == null ? List.<String>of() : targetList) {
            if (modelPaths.stream().noneMatch(p -> p.equals(t) || p.endsWith("." + t))) {
                throw new ModelException(file + ": target module '" + t + "' is not a linear layer of this model ("
                        + known + "; LoRA on lm_head and embed_tokens is not supported)");
            }
        }
    }

    /** Typed access to the JSON fields, each failure a one-line error naming the file and key. */
    private record Fields(Path file, JsonNode root) {

        @FunctionalInterface
        interface Check {
            boolean ok(JsonNode value);
        }

        /** Refuses a present, non-null {@code key} whose value fails {@code accepted}, with the reason. */
        void refuseUnless(String key, Check accepted, String reason) throws ModelException {
            JsonNode v = root.get(key);
            if (v != null && !v.isNull() && !accepted.ok(v)) {
                throw new ModelException(file + ": " + key + " " + v + ": " + reason);
            }
        }

        int positiveInt(String key, int absent) throws ModelException {
            double v = number(key, absent);
            return (int) check(v, v == Math.rint(v) && v > 0 && v <= Integer.MAX_VALUE,
                    key + " must be a positive integer");
        }

        double number(String key, double absent) throws ModelException {
            return value(key, absent, JsonNode::isNumber, "a number", JsonNode::asDouble);
        }

        boolean bool(String key, boolean absent) throws ModelException {
            return value(key, absent, JsonNode::isBoolean, "true or false", JsonNode::asBoolean);
        }

        /**
         * The start {@code init_lora_weights} and {@code loftq_config} describe (LoRA's when absent); a start that
         * rewrites the base in a way qlora4j does not reproduce is refused.
         */
        AdapterInit init() throws ModelException {
            JsonNode value = root.get("init_lora_weights");
            if (value != null && !value.isNull() && !value.isBoolean() && !value.isTextual()) {
                throw new ModelException(file + ": init_lora_weights must be true, false or a string, got " + value);
            }
            JsonNode loftq = root.path("loftq_config");
            try {
                return AdapterInits.fromPeft(value == null || value.isNull() ? null
                        : value.isBoolean() ? (Object) value.asBoolean() : value.asText(),
                        loftq.path("loftq_bits").asInt(4), loftq.path("loftq_iter").asInt(1));
            } catch (IllegalArgumentException e) {
                throw new ModelException(file + ": init_lora_weights " + e.getMessage());
            }
        }

        /** The registered variant whose flag ({@code use_dora}, ...) is true; plain LoRA when none is. */
        AdapterVariant variant() throws ModelException {
            for (AdapterVariant v : AdapterVariants.all()) {
                if (v.peftFlag() != null) {
                    bool(v.peftFlag(), false);
                }
            }
            try {
                return AdapterVariants.fromFlags(flag -> root.path(flag).asBoolean(false));
            } catch (IllegalArgumentException e) {
                throw new ModelException(file + ": " + e.getMessage());
            }
        }

        /** The value of {@code key} when it is present and not null, {@code absent} otherwise; a wrong type fails. */
        private <T> T value(String key, T absent, Check type, String expected, Function<JsonNode, T> read)
                throws ModelException {
            JsonNode v = root.get(key);
            if (v == null || v.isNull()) {
                return absent;
            }
            if (!type.ok(v)) {
                throw new ModelException(file + ": " + key + " must be " + expected + ", got " + v);
            }
            return read.apply(v);
        }

        /** A {@code {pattern: number}} object (absent or null: empty), in file order, each key a valid regex. */
        Map<String, Double> patterns(String key) throws ModelException {
            Map<String, Double> out = new LinkedHashMap<>();
            JsonNode v = root.get(key);
            if (v == null || v.isNull()) {
                return out;
            }
            if (!v.isObject()) {
                throw new ModelException(file + ": " + key + " must be an object of module patterns, got " + v);
            }
            for (Map.Entry<String, JsonNode> e : v.properties()) {
                regex(e.getKey(), key + " key");
                if (!e.getValue().isNumber()) {
                    throw new ModelException(file + ": " + key + "['" + e.getKey() + "'] must be a number, got " + e.getValue());
                }
                out.put(e.getKey(), e.getValue().asDouble());
            }
            return out;
        }

        /** A Python {@code re} expression ({@link #javaSyntax}) as a Java pattern, or a line naming {@code what}. */
        Pattern regex(String expression, String what) throws ModelException {
            try {
                return Pattern.compile(javaSyntax(expression));
            } catch (PatternSyntaxException e) {
                throw new ModelException(file + ": " + what + " '" + expression + "' is not a valid regular expression: "
                        + e.getDescription());
            }
        }

        String text(JsonNode node, String message) throws ModelException {
            if (!node.isTextual()) {
                throw new ModelException(file + ": " + message + ", got " + node);
            }
            return node.asText();
        }

        double check(double value, boolean ok, String message) throws ModelException {
            if (!ok) {
                throw new ModelException(file + ": " + message + ", got " + value);
            }
            return value;
        }
    }
}
