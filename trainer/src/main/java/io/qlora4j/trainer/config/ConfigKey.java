package io.qlora4j.trainer.config;

import java.util.List;

/**
 * One setting a job may give: its name (LLaMA-Factory's spelling), type, default, allowed values
 * and range. A key or value that qlora4j knows of but does not implement yet carries the reason, so
 * that a job using it is refused by name rather than silently ignored.
 *
 * @param name the key as written in YAML
 * @param type how the value is parsed
 * @param defaultValue the default, already of the key's Java type, or null for "unset"
 * @param help one line for error messages and documentation
 * @param choices the implemented values of a string or integer key (empty: any)
 * @param planned values known from LLaMA-Factory that are refused until implemented (empty: none)
 * @param min the smallest allowed number (inclusive), or null
 * @param max the largest allowed number (inclusive), or null
 * @param notImplemented why the whole key is refused for now, or null when it works
 */
public record ConfigKey(
        String name,
        Type type,
        Object defaultValue,
        String help,
        List<String> choices,
        List<String> planned,
        Double min,
        Double max,
        String notImplemented) {

    /** How a key's value is written and parsed. */
    public enum Type {
        /** Text; a YAML mapping or list is refused. */
        STRING,
        /** A comma list, written as text ("a,b") or as a YAML list of strings. */
        LIST,
        INT, FLOAT, BOOL;

        String describe() {
            return switch (this) {
                case STRING -> "a string";
                case LIST -> "a string or a list of strings";
                case INT -> "an integer";
                case FLOAT -> "a number";
                case BOOL -> "true or false";
            };
        }
    }

    static ConfigKey of(String name, Type type, Object defaultValue, String help) {
        return new ConfigKey(name, type, defaultValue, help, List.of(), List.of(), null, null, null);
    }

    ConfigKey choices(String... values) {
        return new ConfigKey(name, type, defaultValue, help, List.of(values), planned, min, max, notImplemented);
    }

    ConfigKey planned(String... values) {
        return new ConfigKey(name, type, defaultValue, help, choices, List.of(values), min, max, notImplemented);
    }

    ConfigKey range(Double low, Double high) {
        return new ConfigKey(name, type, defaultValue, help, choices, planned, low, high, notImplemented);
    }

    ConfigKey notImplemented(String why) {
        return new ConfigKey(name, type, defaultValue, help, choices, planned, min, max, why);
    }
}
