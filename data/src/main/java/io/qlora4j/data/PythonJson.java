package io.qlora4j.data;

import com.fasterxml.jackson.databind.JsonNode;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.Iterator;
import java.util.Map;

/**
 * JSON text exactly as Python's {@code json.dumps(value, ensure_ascii=False)} writes it (and with
 * {@code indent=4}), so tool prompts and function calls tokenize as in LLaMA-Factory: separators
 * {@code ", "} and {@code ": "} (with indent: {@code ","} + newline), keys in input order, only
 * quote, backslash and control characters escaped (short forms such as {@code \n}, else a
 * four-hex-digit unicode escape),
 * floats as Python's {@code repr} (shortest digits; exponent form below 1e-4 and from 1e16).
 */
final class PythonJson {

    private PythonJson() {
    }

    /** {@code json.dumps(node, ensure_ascii=False)}. */
    static String dumps(JsonNode node) {
        StringBuilder out = new StringBuilder();
        write(node, out, -1, 0);
        return out.toString();
    }

    /** {@code json.dumps(node, indent=4, ensure_ascii=False)}. */
    static String dumpsIndented(JsonNode node) {
        StringBuilder out = new StringBuilder();
        write(node, out, 4, 0);
        return out.toString();
    }

    private static void write(JsonNode node, StringBuilder out, int indent, int depth) {
        if (node.isObject()) {
            if (node.isEmpty()) {
                out.append("{}");
                return;
            }
            out.append('{');
            boolean first = true;
            for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                separate(out, first, indent, depth + 1);
                first = false;
                string(e.getKey(), out);
                out.append(": ");
                write(e.getValue(), out, indent, depth + 1);
            }
            close(out, indent, depth);
            out.append('}');
        } else if (node.isArray()) {
            if (node.isEmpty()) {
                out.append("[]");
                return;
            }
            out.append('[');
            boolean first = true;
            for (JsonNode element : node) {
                separate(out, first, indent, depth + 1);
                first = false;
                write(element, out, indent, depth + 1);
            }
            close(out, indent, depth);
            out.append(']');
        } else if (node.isTextual()) {
            string(node.asText(), out);
        } else if (node.isIntegralNumber()) {
            out.append(node.bigIntegerValue());
        } else if (node.isNumber()) {
            out.append(floatRepr(node.doubleValue()));
        } else if (node.isBoolean()) {
            out.append(node.booleanValue() ? "true" : "false");
        } else {
            out.append("null");
        }
    }

    private static void separate(StringBuilder out, boolean first, int indent, int depth) {
        if (indent < 0) {
            out.append(first ? "" : ", ");
        } else {
            out.append(first ? "\n" : ",\n").append(" ".repeat(indent * depth));
        }
    }

    private static void close(StringBuilder out, int indent, int depth) {
        if (indent >= 0) {
            out.append('\n').append(" ".repeat(indent * depth));
        }
    }

    private static void string(String text, StringBuilder out) {
        out.append('"');
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }

    /**
     * The shortest decimal that reads back as {@code d} (positive, finite), of those the nearest to it: the digits of
     * Python's {@code repr}. Java 17's {@code Double.toString} does not always give the shortest (2.82879384806159e17
     * came out with 18 digits; JDK 19 fixed it), so each length is tried with the value rounded to nearest and cut
     * down and up (near a power of two the closest candidate can miss while one farther on the wider side reads back).
     */
    static BigDecimal shortest(double d) {
        BigDecimal exact = new BigDecimal(d);
        for (int digits = 1; ; digits++) {
            BigDecimal best = null;
            for (RoundingMode mode : new RoundingMode[] {RoundingMode.HALF_EVEN, RoundingMode.FLOOR,
                    RoundingMode.CEILING}) {
                BigDecimal candidate = exact.round(new MathContext(digits, mode));
                if (candidate.doubleValue() == d && (best == null
                        || candidate.subtract(exact).abs().compareTo(best.subtract(exact).abs()) < 0)) {
                    best = candidate;
                }
            }
            if (best != null) {
                return best;
            }
        }
    }

    /** Python's {@code repr(float)}. */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return 1 / d < 0 ? "-0.0" : "0.0";
        }
        BigDecimal value = shortest(Math.abs(d)).stripTrailingZeros();
        String digits = value.unscaledValue().toString();
        int exponent = digits.length() - 1 - value.scale();
        String sign = d < 0 ? "-" : "";
        if (exponent < -4 || exponent >= 16) {
            String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
            return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + String.format("%02d", Math.abs(exponent));
        }
        String plain = value.toPlainString();
        return sign + (plain.contains(".") ? plain : plain + ".0");
    }
}
