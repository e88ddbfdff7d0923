package io.qlora4j.data;

/**
 * A record that breaks its format: skipped, counted under its {@link #kind} and reported with its file and
 * line. The kind is the short reason the summary counts by ("invalid JSON"); the message says what exactly.
 */
final class InvalidRecordException extends Exception {

    private static final long serialVersionUID = 1L;

    private final String kind;

    /** A reason whose text is its own kind (it names no field or position). */
    InvalidRecordException(String reason) {
        this(reason, reason);
    }

    InvalidRecordException(String kind, String detail) {
        super(detail, null, false, false);
        this.kind = kind;
    }

    /** The short reason that skipped records are counted by. */
    String kind() {
        return kind;
    }
}
