package io.qlora4j.quant;

/** A stored quantized tensor that does not follow the bitsandbytes layout; the message names the key at fault. */
public class QuantFormatException extends Exception {
    private static final long serialVersionUID = 1L;

    /** Creates the exception with its one-line message. */
    public QuantFormatException(String message) {
        super(message);
    }

    /**
     * Refuses a stored entry's scales (absmax, an HQQ scale or zero) holding a NaN or an infinity, naming {@code key}
     * and the element: loaded, it would surface only as a NaN loss, far from the entry at fault.
     */
    public static void requireFinite(String key, float[] values) throws QuantFormatException {
        for (int i = 0; i < values.length; i++) {
            if (!Float.isFinite(values[i])) {
                throw new QuantFormatException(key + ": holds " + values[i] + " at element " + i
                        + "; expected finite numbers");
            }
        }
    }
}
