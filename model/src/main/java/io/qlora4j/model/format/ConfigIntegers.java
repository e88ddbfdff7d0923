package io.qlora4j.model.format;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * Whole-number fields of a checkpoint's {@code quantization_config}, read strictly: Jackson's {@code asInt} would
 * truncate {@code 4.5} to 4 and parse the string {@code "4"}, loading a checkpoint whose config says something else
 * than what qlora4j then reads; such a value is refused by its field instead.
 */
final class ConfigIntegers {
    private ConfigIntegers() {}

    /**
     * The whole number at {@code field}, or {@code absent} when the field is missing.
     *
     * @throws IllegalArgumentException naming the field and its value when that is not a whole number
     */
    static int get(JsonNode config, String field, int absent) {
        JsonNode f = config.path(field);
        if (f.isMissingNode()) {
            return absent;
        }
        if (!f.isNumber() || !f.canConvertToExactIntegral() || !f.canConvertToInt()) {
            throw new IllegalArgumentException(field + " " + f + " is not a whole number");
        }
        return f.asInt();
    }
}
