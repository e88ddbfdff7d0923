package io.qlora4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.Test;

import java.util.List;

class SharegptConverterTest {

    static final ObjectMapper JSON = new ObjectMapper();

    static Conversation convert(DatasetColumns columns, String json) throws Exception {
        return new SharegptConverter(columns).convert(JSON.readTree(json));
    }

    @Test
    void leadingSystemMessageBecomesTheSystemPrompt() throws Exception {
        Conversation c = convert(DatasetColumns.DEFAULTS, """
                {"conversations": [{"from": "system", "value": "be nice"}, {"from": "human", "value": "hi"},
                 {"from": "gpt", "value": "fine"}], "system": "ignored"}""");
        assertEquals(new Conversation(List.of(new Message(Role.USER, "hi"), new Message(Role.ASSISTANT, "fine")),
                "be nice", ""), c);
    }

    @Test
    void toolTurnsTakeUserAndAssistantPositions() throws Exception {
        Conversation c = convert(DatasetColumns.DEFAULTS.with("system", "system").with("tools", "tools"), """
                {"conversations": [{"from": "human", "value": "hi"},
                 {"from": "function_call", "value": "{\\"name\\": \\"x\\", \\"arguments\\": {}}"},
                 {"from": "observation", "value": "y"}, {"from": "gpt", "value": "fine"}],
                 "system": "be nice", "tools": [{"name": "x"}]}""");
        assertEquals(List.of(Role.USER, Role.FUNCTION, Role.OBSERVATION, Role.ASSISTANT),
                c.messages().stream().map(Message::role).toList());
        assertEquals("be nice", c.system());
        assertEquals("[{\"name\":\"x\"}]", c.tools());
    }

    @Test
    void openAiMessagesReadThroughTags() throws Exception {
        DatasetColumns openai = DatasetColumns.DEFAULTS.with("messages", "messages").with("role_tag", "role")
                .with("content_tag", "content").with("user_tag", "user").with("assistant_tag", "assistant");
        Conversation c = convert(openai, """
                {"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"},
                 {"role": "assistant", "content": "fine"}]}""");
        assertEquals(new Conversation(List.of(new Message(Role.USER, "hi"), new Message(Role.ASSISTANT, "fine")),
                "be nice", ""), c);
    }

    @Test
    void brokenConversationsAreRefusedWithTheReason() {
        InvalidRecordException order = assertThrows(InvalidRecordException.class, () -> convert(DatasetColumns.DEFAULTS,
                "{\"conversations\": [{\"from\": \"gpt\", \"value\": \"a\"}, {\"from\": \"human\", \"value\": \"b\"}]}"));
        assertEquals("message 1 has role 'gpt' where a user/observation turn belongs", order.getMessage());
        InvalidRecordException unknown = assertThrows(InvalidRecordException.class, () -> convert(
                DatasetColumns.DEFAULTS, "{\"conversations\": [{\"from\": \"robot\", \"value\": \"a\"}]}"));
        assertEquals("unknown role", unknown.kind());
        assertEquals("message 1 has role 'robot', which is none of the dataset's turn tags (function_call, gpt, human,"
                + " observation)", unknown.getMessage());
        assertEquals("empty conversation", assertThrows(InvalidRecordException.class,
                () -> convert(DatasetColumns.DEFAULTS, "{\"conversations\": []}")).getMessage());
        assertEquals("conversation does not end with an assistant turn", assertThrows(InvalidRecordException.class,
                () -> convert(DatasetColumns.DEFAULTS,
                        "{\"conversations\": [{\"from\": \"human\", \"value\": \"b\"}]}")).getMessage());
        assertEquals("missing list 'conversations'", assertThrows(InvalidRecordException.class,
                () -> convert(DatasetColumns.DEFAULTS, "{\"text\": \"b\"}")).getMessage());
        // LLaMA-Factory stops on a message without content; qlora4j skips the record and counts it
        for (String message : new String[] {"{\"from\": \"gpt\", \"value\": null}", "{\"from\": \"gpt\"}"}) {
            assertEquals("message 2 has no string 'value'", assertThrows(InvalidRecordException.class,
                    () -> convert(DatasetColumns.DEFAULTS, "{\"conversations\": [{\"from\": \"human\", \"value\":"
                            + " \"b\"}, " + message + "]}")).getMessage());
        }
    }
}
