package io.qlora4j.data;

import static io.qlora4j.data.TinyTokenizer.ids;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

class ChatTemplateTest {

    @TempDir
    static Path dir;

    static TemplateTokenizer tokenizer;

    @BeforeAll
    static void open() throws Exception {
        tokenizer = TemplateTokenizer.open(TinyTokenizer.writeLlamaLike(dir));
    }

    @AfterAll
    static void close() {
        tokenizer.close();
    }

    static Conversation chat(String system, String... turns) {
        List<Message> messages = new java.util.ArrayList<>();
        for (int i = 0; i < turns.length; i++) {
            messages.add(new Message(i % 2 == 0 ? Role.USER : Role.ASSISTANT, turns[i]));
        }
        return new Conversation(messages, system, null);
    }

    static List<int[][]> encode(String template, Conversation conversation) throws DataException {
        ChatTemplate t = ChatTemplate.named(template);
        return t.encodeMultiturn(t.bind(tokenizer), conversation);
    }

    @Test
    void defaultSingleTurnPutsEosAfterUserAndAssistant() throws Exception {
        List<int[][]> pairs = encode("default", chat(null, "hi", "fine"));
        assertEquals(1, pairs.size());
        assertArrayEquals(ids("Human", ":", "hi", "</s>", "\n", "Assistant", ":"), pairs.get(0)[0]);
        assertArrayEquals(ids("fine", "</s>", "\n"), pairs.get(0)[1]);
    }

    @Test
    void defaultSystemPromptPrecedesOnlyTheFirstTurn() throws Exception {
        List<int[][]> pairs = encode("default", chat("be nice", "hi", "fine", "how are you", "ok"));
        assertEquals(2, pairs.size());
        assertArrayEquals(ids("System", ":", "be", "nice", "</s>", "\n",
                "Human", ":", "hi", "</s>", "\n", "Assistant", ":"), pairs.get(0)[0]);
        assertArrayEquals(ids("fine", "</s>", "\n"), pairs.get(0)[1]);
        assertArrayEquals(ids("Human", ":", "how", "are", "you", "</s>", "\n", "Assistant", ":"), pairs.get(1)[0]);
        assertArrayEquals(ids("ok", "</s>", "\n"), pairs.get(1)[1]);
    }

    @Test
    void unknownTemplateFailsListingTheKnownOnes() {
        DataException e = assertThrows(DataException.class, () -> ChatTemplate.named("nope"));
        assertTrue(e.getMessage().contains("'nope'") && e.getMessage().contains("default, empty"), e.getMessage());
    }
}
