package io.qlora4j.data;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;

/**
 * Alpaca records as LLaMA-Factory's {@code AlpacaDatasetConverter}: history pairs become
 * user/assistant turns, the user turn is the non-empty ones of prompt and query joined by
 * {@code "\n"}, the response (a string) the assistant turn; without a response the record is
 * prompt-only (usable for plain-text pretraining, refused for supervised training).
 */
record AlpacaConverter(DatasetColumns columns) implements RecordConverter {

    @Override
    public Conversation convert(JsonNode record) throws InvalidRecordException {
        List<Message> messages = new ArrayList<>();
        String historyColumn = columns.get("history");
        JsonNode history = historyColumn == null ? null : record.get(historyColumn);
        if (history != null && history.isArray()) {
            for (JsonNode pair : history) {
                if (!pair.isArray() || pair.size() != 2 || !pair.get(0).isTextual() || !pair.get(1).isTextual()) {
                    throw new InvalidRecordException("history not a list of [prompt, response]",
                            "'" + historyColumn + "' must be a list of [prompt, response]");
                }
                messages.add(new Message(Role.USER, pair.get(0).asText()));
                messages.add(new Message(Role.ASSISTANT, pair.get(1).asText()));
            }
        }
        String prompt = RecordConverter.text(record, columns.get("prompt"));
        String query = RecordConverter.text(record, columns.get("query"));
        StringBuilder user = new StringBuilder();
        if (prompt != null && !prompt.isEmpty()) {
            user.append(prompt);
        }
        if (query != null && !query.isEmpty()) {
            user.append(user.length() > 0 ? "\n" : "").append(query);
        }
        messages.add(new Message(Role.USER, user.toString()));
        String response = RecordConverter.text(record, columns.get("response"));
        if (response != null) {
            messages.add(new Message(Role.ASSISTANT, response));
        }
        String system = RecordConverter.text(record, columns.get("system"));
        String tools = RecordConverter.text(record, columns.get("tools"));
        return new Conversation(messages, system, tools);
    }
}
