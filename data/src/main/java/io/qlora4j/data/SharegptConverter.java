package io.qlora4j.data;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * ShareGPT records (and OpenAI-style {@code messages} through the tags) as LLaMA-Factory's
 * {@code SharegptDatasetConverter}: a leading system-tagged message becomes the system prompt,
 * the rest must alternate user-side (user, observation) and assistant-side (assistant, function
 * call) turns, starting with the user side, in an even number.
 */
record SharegptConverter(DatasetColumns columns) implements RecordConverter {

    @Override
    public Conversation convert(JsonNode record) throws InvalidRecordException {
        String messagesColumn = columns.get("messages");
        JsonNode messages = record.get(messagesColumn);
        if (messages == null || !messages.isArray()) {
            throw new InvalidRecordException("no message list", "missing list '" + messagesColumn + "'");
        }
        String roleTag = columns.get("role_tag");
        String contentTag = columns.get("content_tag");
        String systemTag = columns.get("system_tag");
        Map<String, Role> roles = new HashMap<>();
        roles.put(columns.get("user_tag"), Role.USER);
        roles.put(columns.get("assistant_tag"), Role.ASSISTANT);
        roles.put(columns.get("observation_tag"), Role.OBSERVATION);
        roles.put(columns.get("function_tag"), Role.FUNCTION);
        roles.remove(null);
        int start = 0;
        String system;
        if (systemTag != null && !messages.isEmpty() && systemTag.equals(messages.get(0).path(roleTag).asText(null))) {
            system = RecordConverter.text(messages.get(0), contentTag);
            start = 1;
        } else {
            system = RecordConverter.text(record, columns.get("system"));
        }
        List<Message> aligned = new ArrayList<>();
        for (int i = start; i < messages.size(); i++) {
            JsonNode message = messages.get(i);
            String tag = message.path(roleTag).asText("");
            Role role = roles.get(tag);
            if (role == null) {
                // LLaMA-Factory warns "Invalid role tag" and drops the record
                throw new InvalidRecordException("unknown role", "message " + (i + 1) + " has role '" + tag
                        + "', which is none of the dataset's turn tags (" + String.join(", ", new TreeSet<>(roles.keySet()))
                        + ")");
            }
            boolean userSide = (i - start) % 2 == 0;
            boolean allowed = userSide ? role == Role.USER || role == Role.OBSERVATION
                    : role == Role.ASSISTANT || role == Role.FUNCTION;
            if (!allowed) {
                throw new InvalidRecordException("roles out of order", "message " + (i + 1) + " has role '"
                        + tag + "' where a "
                        + (userSide ? "user/observation" : "assistant/function call") + " turn belongs");
            }
            String content = RecordConverter.text(message, contentTag);
            if (content == null) {
                // LLaMA-Factory stops on such a message (a KeyError, or "Expected a string" from its formatter)
                throw new InvalidRecordException("message without content", "message " + (i + 1) + " has no string '"
                        + contentTag + "'");
            }
            aligned.add(new Message(role, content));
        }
        if (aligned.isEmpty()) {
            throw new InvalidRecordException("empty conversation");
        }
        if (aligned.size() % 2 != 0) {
            throw new InvalidRecordException("conversation does not end with an assistant turn");
        }
        return new Conversation(aligned, system, tools(record));
    }

    /** The tools column as a JSON string (a JSON list or object is serialized). */
    private String tools(JsonNode record) {
        String column = columns.get("tools");
        JsonNode node = column == null ? null : record.get(column);
        if (node == null || node.isNull()) {
            return null;
        }
        return node.isTextual() ? node.asText() : node.toString();
    }
}
