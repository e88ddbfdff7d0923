package io.qlora4j.data;

/**
 * A data problem the user can fix: a missing or malformed file, an unknown dataset, column or
 * template name. The message is one line naming the file, line or key and what was expected.
 */
public class DataException extends Exception {

    private static final long serialVersionUID = 1L;

    /** Creates the exception with its one-line message. */
    public DataException(String message) {
        super(message);
    }

    /** Creates the exception with its one-line message and the underlying cause. */
    public DataException(String message, Throwable cause) {
        super(message, cause);
    }
}
