package io.qlora4j.trainer.config;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;
import io.qlora4j.model.JsonErrors;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CoderResult;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;
import org.apache.commons.text.similarity.LevenshteinDistance;

/**
 * A validated job: a YAML file in LLaMA-Factory's key names plus {@code key=value} overrides,
 * with aliases resolved, every value parsed to its key's type and checked against its allowed
 * values and range. Unknown keys are refused with the nearest known spelling, keys qlora4j does not
 * implement are refused by name when set to anything but their default, and the keys that change nothing in a
 * qlora4j run are collected for one warning ({@link #inertKeys}). It remembers which keys a command asked for, so one
 * that takes a subset of the keys can name those a job sets in vain ({@link #unreadKeys}).
 */
public final class JobConfig {
    private static final String COMMAND_LINE = "command line";
    /** YAML as job files are read: a key given twice in one mapping is an error, not "the last one wins". */
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory())
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    private final Map<String, Object> values;
    /** The keys the job itself gives, in its order (not those derived from them). */
    private final List<String> given;
    /** The keys asked for since the job was loaded (the value, or whether it is set). */
    private final Set<String> read = ConcurrentHashMap.newKeySet();

    private JobConfig(Map<String, Object> values, List<String> given) {
        this.values = values;
        this.given = given;
    }

    /**
     * Reads the YAML file (may be null) and applies {@code key=value} overrides after it.
     *
     * @throws ConfigException naming the file or the command line, the key and what was expected
     */
    public static JobConfig load(Path yaml, List<String> overrides) throws ConfigException {
        Map<String, Object> values = new LinkedHashMap<>();
        Map<String, String> sources = new LinkedHashMap<>();
        if (yaml != null) {
            Map<String, String> given = new LinkedHashMap<>();
            for (Map.Entry<String, Object> e : readYaml(yaml).entrySet()) {
                put(values, sources, yaml.toString(), e.getKey(), e.getValue(), given);
            }
        }
        for (String override : overrides) {
            int eq = override.indexOf('=');
            if (eq <= 0) {
                throw new ConfigException(COMMAND_LINE + ": '" + override + "' is not key=value");
            }
            put(values, sources, COMMAND_LINE, override.substring(0, eq).trim(), override.substring(eq + 1), null);
        }
        // checked once the command line has had its say: key=null there clears a value the file gives
        for (Map.Entry<String, Object> e : values.entrySet()) {
            check(sources.get(e.getKey()), ConfigKeys.get(e.getKey()), e.getValue());
        }
        List<String> given = List.copyOf(values.keySet());
        packForNeatPacking(values);
        return new JobConfig(values, given);
    }

    /**
     * {@code neat_packing: true} packs: LLaMA-Factory's {@code DataArguments} turns {@code packing} on for it (and so
     * a packed row takes one token less than cutoff_len, as with packing set), and so does this when packing is unset.
     * A job that also says {@code packing: false} is refused rather than silently changed, as LLaMA-Factory changes
     * it.
     */
    private static void packForNeatPacking(Map<String, Object> values) throws ConfigException {
        if (!Boolean.TRUE.equals(values.get("neat_packing"))) {
            return;
        }
        if (Boolean.FALSE.equals(values.get("packing"))) {
            throw new ConfigException("neat_packing: true packs examples (LLaMA-Factory turns packing on for it), but"
                    + " packing: false is set too; drop one of them");
        }
        values.put("packing", Boolean.TRUE);
    }

    /** A job of overrides only, e.g. {@code of("quantization_bit=4")}. */
    public static JobConfig of(String... overrides) throws ConfigException {
        return load(null, List.of(overrides));
    }

    private static Map<String, Object> readYaml(Path yaml) throws ConfigException {
        try {
            byte[] bytes = Files.readAllBytes(yaml);
            requireUtf8(yaml, bytes);
            if (refuseWhatJacksonMisreads(yaml, bytes) == 0) {
                return Map.of(); // nothing but comments or blank lines: an empty job, as an empty document is
            }
            Object tree = YAML.readValue(bytes, Object.class);
            if (tree == null) {
                return Map.of();
            }
            if (!(tree instanceof Map<?, ?> map)) {
                throw new ConfigException(yaml + ": expected a mapping of key: value lines at the top level");
            }
            Map<String, Object> out = new LinkedHashMap<>();
            map.forEach((k, v) -> out.put(String.valueOf(k), v));
            return out;
        } catch (NoSuchFileException e) {
            throw new ConfigException(yaml + ": no such file");
        } catch (JacksonException e) {
            throw new ConfigException(yaml + ": not valid YAML" + JsonErrors.where(e) + ": " + JsonErrors.reason(e));
        } catch (IOException e) {
            throw new ConfigException(yaml + ": cannot read: " + e.getMessage());
        }
    }

    /**
     * Refuses the YAML that Jackson's reading would silently get wrong: a second document (it reads the first only,
     * ignoring the rest), an alias ({@code *name}, which it reads as the text "name" rather than the anchored value)
     * and a merge key ({@code <<}): one line naming the place, so that no job runs on values other than those
     * written. Returns the number of documents (0 for a file of comments only).
     */
    private static int refuseWhatJacksonMisreads(Path yaml, byte[] bytes) throws ConfigException, IOException {
        try (JsonParser parser = YAML.getFactory().createParser(bytes)) {
            int depth = 0;
            int documents = 0;
            for (JsonToken token = parser.nextToken(); token != null; token = parser.nextToken()) {
                String at = yaml + ": line " + parser.currentLocation().getLineNr();
                if (parser instanceof YAMLParser y && y.isCurrentAlias()) {
                    throw new ConfigException(at + ": the alias *" + parser.getText() + " is not supported in a job"
                            + " file (anchors and aliases are not resolved); write the value out");
                }
                if (token == JsonToken.FIELD_NAME && parser.currentName().equals("<<")) {
                    throw new ConfigException(at + ": the merge key << is not supported in a job file; write the keys"
                            + " out");
                }
                if (depth == 0 && ++documents > 1) {
                    throw new ConfigException(at + ": a second YAML document (after ---); a job file holds one");
                }
                depth += token.isStructStart() ? 1 : token.isStructEnd() ? -1 : 0;
            }
            return documents;
        }
    }

    /** Refuses a job file that is not UTF-8, naming the first byte that is not. */
    private static void requireUtf8(Path yaml, byte[] bytes) throws ConfigException {
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CoderResult result = StandardCharsets.UTF_8.newDecoder().decode(in, CharBuffer.allocate(bytes.length), true);
        if (result.isError()) {
            throw new ConfigException(yaml + ": not UTF-8 text: byte " + in.position() + " (0x"
                    + String.format("%02x", bytes[in.position()] & 0xff) + ") starts no UTF-8 character");
        }
    }

    /**
     * Parses one setting into {@code values} and its source into {@code sources} ({@link #load} checks the values once
     * every setting is in). {@code given} (null for the command line, where a later
     * setting overrides an earlier one) records which spelling set each key of a file, so that a file setting one
     * key twice under two names (an alias) with different values is refused rather than letting the last win.
     */
    private static void put(Map<String, Object> values, Map<String, String> sources, String source, String rawKey,
            Object raw, Map<String, String> given) throws ConfigException {
        switch (rawKey) {
            case "load_in_4bit", "load_in_8bit" -> {
                if (Boolean.TRUE.equals(parse(source, ConfigKeys.get("double_quantization"), raw))) {
                    put(values, sources, source, "quantization_bit", rawKey.equals("load_in_4bit") ? "4" : "8", given, rawKey);
                }
            }
            case "adapter" -> {
                String kind = String.valueOf(raw);
                if (!kind.equals("lora") && !kind.equals("qlora")) {
                    throw new ConfigException(source + ": adapter: '" + kind + "' is not supported (allowed: lora, qlora)");
                }
                put(values, sources, source, "finetuning_type", "lora", given, rawKey);
                if (kind.equals("qlora")) {
                    put(values, sources, source, "quantization_bit", "4", given, rawKey);
                }
            }
            case "lora_target_linear" -> {
                if (Boolean.TRUE.equals(parse(source, ConfigKeys.get("double_quantization"), raw))) {
                    put(values, sources, source, "lora_target", "all", given, rawKey);
                }
            }
            default -> put(values, sources, source, rawKey, raw, given, rawKey);
        }
    }

    /**
     * {@link #put(Map, Map, String, String, Object, Map)} of a key that is no shorthand; {@code spelling} is the key as the
     * file wrote it (a shorthand such as {@code load_in_4bit} that set it), which a conflict names.
     */
    private static void put(Map<String, Object> values, Map<String, String> sources, String source, String rawKey,
            Object raw, Map<String, String> given, String spelling) throws ConfigException {
        String name = ConfigKeys.canonicalName(rawKey);
        ConfigKey key = ConfigKeys.get(name);
        if (key == null) {
            throw new ConfigException(source + ": unknown key '" + rawKey + "'" + suggestion(rawKey));
        }
        Object value = parse(source, key, raw);
        if (given != null) {
            String earlier = given.putIfAbsent(name, spelling);
            if (earlier != null && !Objects.equals(values.get(name), value)) {
                throw new ConfigException(source + ": " + name + " is given twice with different values (as " + earlier
                        + " and as " + spelling + "); keep one");
            }
        }
        if (value == null) {
            values.remove(name);
            sources.remove(name);
            return;
        }
        values.put(name, value);
        sources.put(name, source);
    }

    private static String suggestion(String unknown) {
        LevenshteinDistance distance = LevenshteinDistance.getDefaultInstance();
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (String known : ConfigKeys.spellings()) {
            int d = distance.apply(unknown, known);
            if (d < bestDistance) {
                best = known;
                bestDistance = d;
            }
        }
        return best != null && bestDistance <= Math.max(2, unknown.length() / 3)
                ? " (did you mean '" + best + "'?)" : " (see the key table in README.md)";
    }

    private static Object parse(String source, ConfigKey key, Object raw) throws ConfigException {
        // key=null on the command line unsets a key; in a file YAML's own null does, and a quoted "null" is text
        if (raw == null || source.equals(COMMAND_LINE) && raw instanceof String t
                && (t.isBlank() || t.trim().equals("null") || t.trim().equals("~"))) {
            return null;
        }
        if (key.type() == ConfigKey.Type.ANY) {
            return raw;
        }
        if (raw instanceof Map<?, ?>) {
            throw new ConfigException(source + ": " + key.name() + ": expected " + key.type().describe()
                    + ", got a YAML mapping");
        }
        if (raw instanceof List<?> list) {
            if (key.type() != ConfigKey.Type.LIST || list.stream().anyMatch(v -> v instanceof Map || v instanceof List)) {
                throw new ConfigException(source + ": " + key.name() + ": expected " + key.type().describe()
                        + ", got a YAML list" + (key.type() == ConfigKey.Type.LIST ? " holding a list or mapping" : ""));
            }
            return list.stream().map(String::valueOf).collect(Collectors.joining(","));
        }
        String text = String.valueOf(raw).trim();
        if (text.isEmpty()) {
            return null;
        }
        try {
            return switch (key.type()) {
                case STRING, LIST, ANY -> key.valueAliases().getOrDefault(text, text);
                case BOOL -> {
                    if (text.equalsIgnoreCase("true")) {
                        yield Boolean.TRUE;
                    }
                    if (text.equalsIgnoreCase("false")) {
                        yield Boolean.FALSE;
                    }
                    throw new NumberFormatException();
                }
                case INT -> {
                    double d = Double.parseDouble(text);
                    if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
                        throw new NumberFormatException();
                    }
                    yield (int) d;
                }
                case FLOAT -> {
                    double d = Double.parseDouble(text);
                    if (!Double.isFinite(d)) {
                        throw new NumberFormatException();
                    }
                    yield d;
                }
            };
        } catch (NumberFormatException e) {
            throw new ConfigException(source + ": " + key.name() + ": '" + text + "' is not " + key.type().describe());
        }
    }

    private static void check(String source, ConfigKey key, Object value) throws ConfigException {
        String prefix = source + ": " + key.name() + ": ";
        if (key.refuses(value)) {
            throw new ConfigException(prefix + (key.support() == ConfigKey.Support.PLANNED ? "not implemented yet ("
                    : "not implemented (") + key.why() + ")");
        }
        String text = value.toString();
        if (key.planned().contains(text)) {
            throw new ConfigException(prefix + "'" + text + "' is not implemented yet (available: "
                    + String.join(", ", key.choices()) + ")");
        }
        if (!key.choices().isEmpty() && !key.choices().contains(text)) {
            throw new ConfigException(prefix + "'" + text + "' is not allowed (allowed: " + String.join(", ", key.choices()) + ")");
        }
        if (value instanceof Number n) {
            double d = n.doubleValue();
            if ((key.min() != null && d < key.min()) || (key.max() != null && d > key.max())) {
                throw new ConfigException(prefix + text + " is out of range (allowed: " + rangeText(key) + ")");
            }
        }
    }

    private static String rangeText(ConfigKey key) {
        boolean open = key.max() == null || key.max() == Double.MAX_VALUE;
        return open ? ">= " + format(key.min()) : format(key.min()) + " to " + format(key.max());
    }

    private static String format(double d) {
        return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
    }

    /** Whether the job gives this key (rather than leaving it to its default). */
    public boolean isSet(String key) {
        String name = known(key).name();
        read.add(name);
        return values.containsKey(name);
    }

    /** The key's value or its default; null when neither exists. */
    public String string(String key) {
        Object v = value(key);
        return v == null ? null : v.toString();
    }

    /** The key's integer value or default; null when neither exists. */
    public Integer integer(String key) {
        Object v = value(key);
        return v == null ? null : ((Number) v).intValue();
    }

    /** The key's numeric value or default; null when neither exists. */
    public Double number(String key) {
        Object v = value(key);
        return v == null ? null : ((Number) v).doubleValue();
    }

    /** The key's boolean value or default (false when neither exists). */
    public boolean bool(String key) {
        return Boolean.TRUE.equals(value(key));
    }

    /**
     * A mapping-valued key's entries (a YAML mapping, or on the command line a JSON object, as transformers parses
     * {@code lr_scheduler_kwargs}); empty when unset.
     *
     * @throws ConfigException naming the key when its value is no mapping
     */
    public Map<String, Object> mapping(String key) throws ConfigException {
        Object v = value(key);
        if (v == null) {
            return Map.of();
        }
        Object parsed = v;
        if (v instanceof String text) {
            try {
                parsed = YAML.readValue(text, Object.class);
            } catch (JacksonException e) {
                parsed = text;
            }
        }
        if (!(parsed instanceof Map<?, ?> map)) {
            throw new ConfigException(key + ": expected a mapping such as {\"name\": value}, got " + v);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        map.forEach((k, value) -> out.put(String.valueOf(k), value));
        return out;
    }

    /** The key's value, or an error naming the key when the job does not give it and it has no default. */
    public String require(String key) throws ConfigException {
        String v = string(key);
        if (v == null) {
            ConfigKey k = known(key);
            throw new ConfigException("missing required key " + k.name() + " (" + k.help() + "), e.g. " + k.name() + "=...");
        }
        return v;
    }

    /**
     * The keys the job sets to something other than their default that change nothing in a single-process qlora4j
     * run (the README key table says why for each), in the order the job gives them.
     */
    public List<String> inertKeys() {
        return values.entrySet().stream()
                .filter(e -> ConfigKeys.get(e.getKey()).support() == ConfigKey.Support.INERT)
                .filter(e -> !e.getValue().equals(ConfigKeys.get(e.getKey()).defaultValue()))
                .map(Map.Entry::getKey).toList();
    }

    /**
     * The keys the job gives that nothing has asked for since it was loaded, in the job's order, less the inert ones
     * ({@link #inertKeys} names those): after a command that takes a subset of the keys ({@code generate} with a
     * training job), the ones it did not use.
     */
    public List<String> unreadKeys() {
        List<String> inert = inertKeys();
        return given.stream().filter(k -> !read.contains(k) && !inert.contains(k)).toList();
    }

    /** The keys the job sets explicitly, with their parsed values (for saving the resolved job). */
    public Map<String, Object> explicitValues() {
        return Collections.unmodifiableMap(values);
    }

    /**
     * Every implemented key with the value in effect and every other key the job sets: the job's own value or
     * the default, keys without either left out, {@code lora_alpha} resolved to {@code 2 x lora_rank} when unset
     * (for saving the job as it ran).
     */
    public Map<String, Object> resolvedValues() {
        Map<String, Object> resolved = new LinkedHashMap<>();
        for (ConfigKey key : ConfigKeys.all()) {
            Object v = stored(key);
            if (v != null && (key.support() == ConfigKey.Support.IMPLEMENTED || values.containsKey(key.name()))) {
                resolved.put(key.name(), v);
            }
        }
        resolved.putIfAbsent("lora_alpha", 2.0 * ((Number) resolved.get("lora_rank")).intValue());
        return resolved;
    }

    private Object value(String key) {
        ConfigKey k = known(key);
        read.add(k.name());
        return stored(k);
    }

    /** The key's value or its default, without counting it as asked for ({@link #unreadKeys}). */
    private Object stored(ConfigKey k) {
        return values.getOrDefault(k.name(), k.defaultValue());
    }

    private static ConfigKey known(String key) {
        ConfigKey k = ConfigKeys.get(key);
        if (k == null) {
            throw new IllegalArgumentException("not a config key: " + key);
        }
        return k;
    }
}
