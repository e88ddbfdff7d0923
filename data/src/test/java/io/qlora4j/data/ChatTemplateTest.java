package io.qlora4j.data;

import static io.qlora4j.data.TinyTokenizer.ids;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

class ChatTemplateTest extends TokenizerTestBase {

    List<int[][]> encode(String template, Conversation conversation) throws DataException {
        ChatTemplate t = ChatTemplate.named(template);
        return t.encodeMultiturn(t.bind(tokenizer), conversation, false);
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

    static void assertPair(int[] prompt, int[] response, int[][] pair) {
        assertArrayEquals(prompt, pair[0], "prompt");
        assertArrayEquals(response, pair[1], "response");
    }

    @Test
    void alpacaUsesItsDefaultSystemAndEosThenBlankLine() throws Exception {
        List<int[][]> pairs = encode("alpaca", chat(null, "hi", "fine"));
        assertPair(ids("Below", "is", "an", "instruction", "that", "describes", "a", "task", ".", "Write", "a",
                "response", "that", "appropriately", "completes", "the", "request", ".", "\n", "\n",
                "#", "#", "#", "Instruction", ":", "\n", "hi", "\n", "\n", "#", "#", "#", "Response", ":", "\n"),
                ids("fine", "</s>", "\n", "\n"), pairs.get(0));
    }

    @Test
    void llama2FusesSystemIntoFirstUserTurnWithBosEveryTurn() throws Exception {
        List<int[][]> pairs = encode("llama2", chat("be nice", "hi", "fine", "how are you", "ok"));
        assertPair(ids("<s>", "[", "INST", "]", "<", "<", "SYS", ">", ">", "\n", "be", "nice", "\n", "<", "<", "/",
                "SYS", ">", ">", "\n", "\n", "hi", "[", "/", "INST", "]"), ids("fine", "</s>"), pairs.get(0));
        assertPair(ids("<s>", "[", "INST", "]", "how", "are", "you", "[", "/", "INST", "]"), ids("ok", "</s>"),
                pairs.get(1));
    }

    @Test
    void mistralPutsBosOnceAndSystemBeforeTheFirstUserText() throws Exception {
        List<int[][]> pairs = encode("mistral", chat("be nice", "hi", "fine", "how are you", "ok"));
        assertPair(ids("<s>", "[", "INST", "]", "be", "nice", "\n", "\n", "hi", "[", "/", "INST", "]"),
                ids("fine", "</s>"), pairs.get(0));
        assertPair(ids("[", "INST", "]", "how", "are", "you", "[", "/", "INST", "]"), ids("ok", "</s>"),
                pairs.get(1));
    }

    @Test
    void llama3MatchesFormatsSection9WithEotAsEos() throws Exception {
        Path llama3 = TinyTokenizer.write(dir.resolve("llama3"), java.util.Map.of(
                "bos_token", "<|begin_of_text|>", "eos_token", "<|end_of_text|>"));
        try (TemplateTokenizer tok = TemplateTokenizer.open(llama3)) {
            ChatTemplate template = ChatTemplate.named("llama3");
            TemplateTokenizer bound = template.bind(tok);
            assertEquals(ids("<|eot_id|>")[0], bound.eosId());
            List<int[][]> pairs = template.encodeMultiturn(bound, chat("be nice", "hi", "fine", "bye", "ok"), false);
            assertPair(ids("<|begin_of_text|>",
                    "<|start_header_id|>", "system", "<|end_header_id|>", "\n", "\n", "be", "nice", "<|eot_id|>",
                    "<|start_header_id|>", "user", "<|end_header_id|>", "\n", "\n", "hi", "<|eot_id|>",
                    "<|start_header_id|>", "assistant", "<|end_header_id|>", "\n", "\n"),
                    ids("fine", "<|eot_id|>"), pairs.get(0));
            assertPair(ids("<|start_header_id|>", "user", "<|end_header_id|>", "\n", "\n", "bye", "<|eot_id|>",
                    "<|start_header_id|>", "assistant", "<|end_header_id|>", "\n", "\n"),
                    ids("ok", "<|eot_id|>"), pairs.get(1));
        }
    }

    @Test
    void qwenAddsItsDefaultSystemAndEndsTurnsWithImEnd() throws Exception {
        ChatTemplate qwen = ChatTemplate.named("qwen");
        assertEquals(ids("<|im_end|>")[0], qwen.bind(tokenizer).eosId());
        List<int[][]> pairs = encode("qwen", chat(null, "hi", "fine"));
        assertPair(ids("<|im_start|>", "system", "\n", "You", "are", "Qwen", ",", "created", "by", "Alibaba", "Cloud",
                ".", "You", "are", "a", "helpful", "assistant", ".", "<|im_end|>", "\n",
                "<|im_start|>", "user", "\n", "hi", "<|im_end|>", "\n", "<|im_start|>", "assistant", "\n"),
                ids("fine", "<|im_end|>", "\n"), pairs.get(0));
    }

    @Test
    void chatmlHasNoDefaultSystemAndToolTurnsForObservations() throws Exception {
        Conversation c = new Conversation(List.of(new Message(Role.USER, "hi"), new Message(Role.ASSISTANT, "x"),
                new Message(Role.OBSERVATION, "y"), new Message(Role.ASSISTANT, "fine")), null, null);
        List<int[][]> pairs = encode("chatml", c);
        assertPair(ids("<|im_start|>", "user", "\n", "hi", "<|im_end|>", "\n", "<|im_start|>", "assistant", "\n"),
                ids("x", "<|im_end|>", "\n"), pairs.get(0));
        assertPair(ids("<|im_start|>", "tool", "\n", "y", "<|im_end|>", "\n", "<|im_start|>", "assistant", "\n"),
                ids("fine", "<|im_end|>", "\n"), pairs.get(1));
    }

    @Test
    void emptyTemplateIsTheBareTextWithoutEos() throws Exception {
        List<int[][]> pairs = encode("empty", chat("be", "hi", "fine"));
        assertPair(ids("be", "hi"), ids("fine"), pairs.get(0));
    }

    @Test
    void toolsOpenTheSystemSlotEvenWithoutASystemPrompt() throws Exception {
        // LLaMA-Factory: `if system or tools` with tools "[]" formats an empty system turn
        List<int[][]> pairs = encode("default", new Conversation(chat(null, "hi", "fine").messages(), null, "[]"));
        assertPair(ids("System", ":", "</s>", "\n", "Human", ":", "hi", "</s>", "\n", "Assistant", ":"),
                ids("fine", "</s>", "\n"), pairs.get(0));
    }

    @Test
    void functionCallsUseTheAssistantSlotsAndObservationsTheUserSlots() throws Exception {
        Conversation c = new Conversation(List.of(new Message(Role.USER, "hi"),
                new Message(Role.FUNCTION, "{\"name\": \"x\", \"arguments\": {}}"),
                new Message(Role.OBSERVATION, "y"), new Message(Role.ASSISTANT, "fine")), null, null);
        List<int[][]> pairs = encode("default", c);
        assertPair(ids("Human", ":", "hi", "</s>", "\n", "Assistant", ":"),
                ids("Action", ":", "x", "\n", "Action", "Input", ":", "{", "}", "</s>", "\n"), pairs.get(0));
        assertPair(ids("Human", ":", "y", "</s>", "\n", "Assistant", ":"), ids("fine", "</s>", "\n"), pairs.get(1));
    }

    @Test
    void unknownTemplateFailsListingTheKnownOnes() {
        DataException e = assertThrows(DataException.class, () -> ChatTemplate.named("nope"));
        assertTrue(e.getMessage().contains("'nope'") && e.getMessage().contains("default, empty"), e.getMessage());
    }

    @Test
    void llamaFactoryTemplatesQlora4jLacksAreRefusedAsNotImplemented() {
        DataException e = assertThrows(DataException.class, () -> ChatTemplate.named("qwen3_vl_nothink"));
        assertTrue(e.getMessage().startsWith("template: LLaMA-Factory's template 'qwen3_vl_nothink' is not implemented;"
                + " implemented: alpaca, chatml, default"), e.getMessage());
    }
}
