package io.qlora4j.data;

import java.util.List;

/**
 * A record in LLaMA-Factory's aligned form: messages alternating user-side (user, observation)
 * and assistant-side (assistant, function) turns, starting with the user side and, for
 * supervised training, ending with the assistant turn; plus the system prompt and the tools JSON
 * ({@code ""} when absent). For plain-text pretraining the first message holds the text.
 */
record Conversation(List<Message> messages, String system, String tools) {

    /** Copies the message list and turns null system/tools into {@code ""}. */
    Conversation {
        messages = List.copyOf(messages);
        system = system == null ? "" : system;
        tools = tools == null ? "" : tools;
    }
}
