package io.qlora4j.model;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonLocation;

/**
 * Jackson's parse errors as the one-line messages qlora4j prints: where ({@code " at line L, column C"}) and why
 * (the first line of Jackson's own reason), without the second line Jackson appends
 * ({@code at [Source: REDACTED ...]}), which names no file and only adds noise.
 */
public final class JsonErrors {
    private JsonErrors() {}

    /** {@code " at line L, column C"}, or empty when Jackson knows no location. */
    public static String where(JacksonException e) {
        JsonLocation at = e.getLocation();
        return at == null || at.getLineNr() < 1 ? "" : " at line " + at.getLineNr() + ", column " + at.getColumnNr();
    }

    /** The first line of Jackson's reason, with any nested location shortened to {@code [line: L, column: C]}. */
    public static String reason(JacksonException e) {
        String message = e.getOriginalMessage();
        return message == null ? e.getClass().getSimpleName()
                : message.lines().findFirst().orElse("").replaceAll("\\[Source: [^;]*; ", "[").strip();
    }
}
