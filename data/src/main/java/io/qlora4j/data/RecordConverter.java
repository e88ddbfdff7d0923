package io.qlora4j.data;

import com.fasterxml.jackson.databind.JsonNode;

/** Turns one raw record into LLaMA-Factory's aligned form, as its {@code DatasetConverter}s. */
interface RecordConverter {

    /** The aligned conversation of {@code record}; a record that breaks the format is refused with the reason. */
    Conversation convert(JsonNode record) throws InvalidRecordException;

    /** The string in field {@code name} of {@code record}: null when unmapped, absent or JSON null. */
    static String text(JsonNode record, String name) throws InvalidRecordException {
        if (name == null) {
            return null;
        }
        JsonNode node = record.get(name);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isTextual()) {
            throw new InvalidRecordException("field not a string", "field '" + name + "' must be a string");
        }
        return node.asText();
    }
}
