package io.qlora4j.model.format;

import java.util.List;
import java.util.Objects;

/**
 * A job key that configures a base format beyond {@code quantization_method} and {@code quantization_bit}
 * ({@code quantization_type}, {@code double_quantization}, {@code llm_int8_threshold}, ...). A format's
 * {@link FormatRegistration} declares its options; the job key table takes them from there, so a format brings its
 * own keys along.
 *
 * @param name the key as written in YAML
 * @param defaultValue the value when the job does not set it: a String, Integer, Double or Boolean, which also
 *     gives the key's type
 * @param help one line for error messages and documentation
 * @param choices the allowed values as written (empty: any value of the type)
 */
public record FormatOption(String name, Object defaultValue, String help, List<String> choices) {

    /** Checks that the default is one of the four value types. */
    public FormatOption {
        Objects.requireNonNull(name, "name");
        if (!(defaultValue instanceof String || defaultValue instanceof Integer || defaultValue instanceof Double
                || defaultValue instanceof Boolean)) {
            throw new IllegalArgumentException("option " + name + ": the default must be a String, Integer, Double"
                    + " or Boolean, got " + defaultValue);
        }
        choices = List.copyOf(choices);
    }

    /** An option that takes any value of its default's type. */
    public static FormatOption of(String name, Object defaultValue, String help) {
        return new FormatOption(name, defaultValue, help, List.of());
    }

    /** This option restricted to {@code values}. */
    public FormatOption withChoices(String... values) {
        return new FormatOption(name, defaultValue, help, List.of(values));
    }
}
