package io.qlora4j.model;

/**
 * A problem with a model a user supplied (a checkpoint, a config, a tokenizer): the message is one
 * line that names the file and the tensor or key at fault and says what was expected.
 */
public class ModelException extends Exception {
    private static final long serialVersionUID = 1L;

    /** Creates the exception with its one-line message. */
    public ModelException(String message) {
        super(message);
    }

    /** Creates the exception with its one-line message and the low-level cause (shown with --debug). */
    public ModelException(String message, Throwable cause) {
        super(message, cause);
    }
}
