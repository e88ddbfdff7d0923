package io.qlora4j.trainer.config;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One setting a job may give: its name (LLaMA-Factory's or Hugging Face's spelling), the argument class it comes
 * from, type, default, allowed values and range, and how qlora4j supports it. A key qlora4j knows of but does
 * not implement is refused by name when a job sets it to anything but its default, and a key that changes nothing
 * in a single-process qlora4j run is accepted and named in one warning, so no key is silently ignored.
 *
 * @param name the key as written in YAML
 * @param section the argument class the key belongs to (for the key table)
 * @param type how the value is parsed
 * @param defaultValue the default, already of the key's Java type, or null for "unset"
 * @param help one line for error messages and documentation
 * @param choices the implemented values of a string or integer key (empty: any)
 * @param planned values known from LLaMA-Factory that are refused until implemented (empty: none)
 * @param valueAliases other spellings of implemented values, mapped to the value they mean (in the order given)
 * @param min the smallest allowed number (inclusive), or null
 * @param max the largest allowed number (inclusive), or null
 * @param support whether qlora4j implements the key
 * @param why for a key that is not {@link Support#IMPLEMENTED}: why, in a few words
 */
public record ConfigKey(
        String name,
        Section section,
        Type type,
        Object defaultValue,
        String help,
        List<String> choices,
        List<String> planned,
        Map<String, String> valueAliases,
        Double min,
        Double max,
        Support support,
        String why) {

    /** How a key's value is written and parsed. */
    public enum Type {
        /** Text; a YAML mapping or list is refused. */
        STRING,
        /** A comma list, written as text ("a,b") or as a YAML list of strings. */
        LIST,
        INT, FLOAT, BOOL,
        /** A mapping, list or text kept as given (the JSON-valued keys qlora4j does not implement). */
        ANY;

        String describe() {
            return switch (this) {
                case STRING -> "a string";
                case LIST -> "a string or a list of strings";
                case INT -> "an integer";
                case FLOAT -> "a number";
                case BOOL -> "true or false";
                case ANY -> "any value";
            };
        }
    }

    /** The argument classes keys come from, in the order the key table lists them. */
    public enum Section {
        MODEL("Model (LLaMA-Factory's ModelArguments)"),
        DATA("Data (LLaMA-Factory's DataArguments)"),
        FINETUNING("Method (LLaMA-Factory's FinetuningArguments)"),
        GENERATING("Generation (LLaMA-Factory's GeneratingArguments)"),
        TRAINING("Training (Hugging Face's Seq2SeqTrainingArguments and LLaMA-Factory's TrainingArguments)"),
        QLORA4J("qlora4j's own");

        private final String title;

        Section(String title) {
            this.title = title;
        }

        /** The heading of the section in the key table. */
        public String title() {
            return title;
        }
    }

    /** How far qlora4j implements a key. */
    public enum Support {
        /** The key does what LLaMA-Factory's does. */
        IMPLEMENTED,
        /** The key changes nothing in a single-process qlora4j run: accepted, and named in a warning when set. */
        INERT,
        /** Being implemented: refused when set to anything but its default, as "not implemented yet". */
        PLANNED,
        /** A feature qlora4j lacks: refused when set to anything but its default, as "not implemented". */
        UNSUPPORTED
    }

    static ConfigKey of(String name, Type type, Object defaultValue, String help) {
        return new ConfigKey(name, null, type, defaultValue, help, List.of(), List.of(), Map.of(), null, null,
                Support.IMPLEMENTED, null);
    }

    ConfigKey in(Section value) {
        return new ConfigKey(name, value, type, defaultValue, help, choices, planned, valueAliases, min, max, support,
                why);
    }

    ConfigKey choices(String... values) {
        return new ConfigKey(name, section, type, defaultValue, help, List.of(values), planned, valueAliases, min, max,
                support, why);
    }

    ConfigKey planned(String... values) {
        return new ConfigKey(name, section, type, defaultValue, help, choices, List.of(values), valueAliases, min, max,
                support, why);
    }

    /** {@code alias} is accepted for the implemented value {@code value}. */
    ConfigKey alias(String alias, String value) {
        Map<String, String> aliases = new LinkedHashMap<>(valueAliases);
        aliases.put(alias, value);
        return new ConfigKey(name, section, type, defaultValue, help, choices, planned,
                Collections.unmodifiableMap(aliases), min, max, support, why);
    }

    ConfigKey range(Double low, Double high) {
        return new ConfigKey(name, section, type, defaultValue, help, choices, planned, valueAliases, low, high,
                support, why);
    }

    /** Being implemented (refused as "not implemented yet" unless left at its default). */
    ConfigKey notImplemented(String reason) {
        return support(Support.PLANNED, reason);
    }

    /** A feature qlora4j lacks (refused as "not implemented" unless left at its default). */
    ConfigKey unsupported(String reason) {
        return support(Support.UNSUPPORTED, reason);
    }

    /** Changes nothing in a qlora4j run (accepted and named in a warning when set). */
    ConfigKey inert(String reason) {
        return support(Support.INERT, reason);
    }

    private ConfigKey support(Support value, String reason) {
        return new ConfigKey(name, section, type, defaultValue, help, choices, planned, valueAliases, min, max, value,
                reason);
    }

    /** Whether setting the key to {@code value} is refused (a key not implemented, set away from its default). */
    boolean refuses(Object value) {
        return (support == Support.PLANNED || support == Support.UNSUPPORTED) && !value.equals(defaultValue);
    }
}
