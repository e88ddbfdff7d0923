package io.qlora4j.quant;

/** A stored quantized tensor that does not follow the bitsandbytes layout; the message names the key at fault. */
public class QuantFormatException extends Exception {
    private static final long serialVersionUID = 1L;

    /** Creates the exception with its one-line message. */
    public QuantFormatException(String message) {
        super(message);
    }
}
