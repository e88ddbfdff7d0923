package io.qlora4j.quant;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;

/**
 * Formats a double exactly as Python's {@code repr(float)} (and so {@code json.dumps}) does: the
 * shortest decimal that reads back to the same double, fixed notation for exponents -4..15,
 * otherwise {@code 1.5e-05} style. bitsandbytes writes {@code nested_offset} this way.
 */
final class PythonFloat {
    private PythonFloat() {}

    static String repr(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return (Double.doubleToRawLongBits(d) < 0 ? "-" : "") + "0.0";
        }
        BigDecimal shortest = null;
        for (int digits = 1; digits <= 17; digits++) {
            shortest = new BigDecimal(d).round(new MathContext(digits, RoundingMode.HALF_EVEN));
            if (shortest.doubleValue() == d) {
                break;
            }
        }
        BigDecimal stripped = shortest.stripTrailingZeros();
        String s = stripped.unscaledValue().abs().toString();
        int exponent = s.length() - 1 - stripped.scale();
        String sign = d < 0 ? "-" : "";
        if (exponent < -4 || exponent >= 16) {
            String mantissa = s.length() == 1 ? s : s.charAt(0) + "." + s.substring(1);
            int abs = Math.abs(exponent);
            return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + (abs < 10 ? "0" : "") + abs;
        }
        if (exponent < 0) {
            return sign + "0." + "0".repeat(-exponent - 1) + s;
        }
        if (s.length() <= exponent + 1) {
            return sign + s + "0".repeat(exponent + 1 - s.length()) + ".0";
        }
        return sign + s.substring(0, exponent + 1) + "." + s.substring(exponent + 1);
    }
}
