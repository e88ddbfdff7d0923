package io.qlora4j.model.format;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The job keys that choose a base format, as given: {@code quantization_method}, {@code quantization_bit} and the
 * formats' options, from a job file, the command line or an adapter's record. Values may be strings (as typed) or
 * already typed (numbers, booleans from JSON); the typed accessors parse them and fall back to the option's default
 * when absent.
 *
 * @param method the {@code quantization_method} as written, or null (bitsandbytes)
 * @param bits the {@code quantization_bit}, or null for dense weights
 * @param options option values by key; absent or null values take the option's default
 */
public record FormatKeys(String method, Integer bits, Map<String, Object> options) {
    /** The key naming the method. */
    public static final String METHOD = "quantization_method";
    /** The key naming the bit width. */
    public static final String BITS = "quantization_bit";

    /** Copies the options. */
    public FormatKeys {
        options = Collections.unmodifiableMap(new LinkedHashMap<>(options));
    }

    /**
     * The keys of a flat map such as {@link BaseFormat#keys()} or an adapter's record: {@value #METHOD},
     * {@value #BITS} (a number or its text), everything else an option.
     *
     * @throws IllegalArgumentException when {@value #BITS} is not an integer
     */
    public static FormatKeys of(Map<String, ?> keys) {
        Map<String, Object> options = new LinkedHashMap<>(keys);
        Object method = options.remove(METHOD);
        Object bits = options.remove(BITS);
        Integer parsed = null;
        if (bits != null) {
            try {
                double d = Double.parseDouble(bits.toString());
                if (d != Math.rint(d) || Math.abs(d) > 64) {
                    throw new NumberFormatException();
                }
                parsed = (int) d;
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(BITS + " '" + bits + "' is not an integer");
            }
        }
        return new FormatKeys(method == null ? null : method.toString(), parsed, options);
    }

    /** The text of {@code option}, checked against its choices. */
    public String string(FormatOption option) {
        Object v = options.get(option.name());
        String text = v == null ? option.defaultValue().toString() : v.toString().trim();
        if (!option.choices().isEmpty() && option.choices().stream().noneMatch(c -> c.equalsIgnoreCase(text))) {
            throw new IllegalArgumentException(option.name() + " '" + text + "' is not one of "
                    + String.join(", ", option.choices()));
        }
        return text.toLowerCase(Locale.ROOT);
    }

    /** The integer value of {@code option}, checked against its choices. */
    public int integer(FormatOption option) {
        String text = string(option);
        try {
            double d = Double.parseDouble(text);
            if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
                throw new NumberFormatException();
            }
            return (int) d;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option.name() + " '" + text + "' is not an integer");
        }
    }

    /** The numeric value of {@code option}. */
    public double number(FormatOption option) {
        String text = string(option);
        try {
            double d = Double.parseDouble(text);
            if (!Double.isFinite(d)) {
                throw new NumberFormatException();
            }
            return d;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option.name() + " '" + text + "' is not a number");
        }
    }

    /** The boolean value of {@code option}. */
    public boolean bool(FormatOption option) {
        String text = string(option);
        if (text.equals("true") || text.equals("false")) {
            return text.equals("true");
        }
        throw new IllegalArgumentException(option.name() + " '" + text + "' is not true or false");
    }
}
