package io.qlora4j.data;

/** Who speaks a message, as LLaMA-Factory's {@code Role}: user, assistant, system, function call, observation. */
enum Role {
    /** The human turn. */
    USER,
    /** The model's turn: the trained response. */
    ASSISTANT,
    /** The system prompt (only as the first sharegpt message; otherwise {@link Conversation#system()}). */
    SYSTEM,
    /** A model turn that calls a tool (JSON {@code {"name", "arguments"}} or a list of them). */
    FUNCTION,
    /** A tool result, in a user position. */
    OBSERVATION
}
