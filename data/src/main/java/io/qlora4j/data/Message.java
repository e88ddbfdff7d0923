package io.qlora4j.data;

/** One turn of a conversation: its role and its text. */
record Message(Role role, String content) {
}
