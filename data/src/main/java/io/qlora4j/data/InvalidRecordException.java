package io.qlora4j.data;

/** A record that breaks its format: skipped, counted and reported with its file and line. */
final class InvalidRecordException extends Exception {

    private static final long serialVersionUID = 1L;

    InvalidRecordException(String reason) {
        super(reason, null, false, false);
    }
}
