package io.qlora4j.data;

import static io.qlora4j.data.TinyTokenizer.ids;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * A prompt as LLaMA-Factory's chat puts it: encode_oneturn over the prompt and an empty answer, its prompt part, in
 * the template's slots (written out here from LLaMA-Factory's template.py), and the template's stop ids.
 */
class ChatPromptTest extends TokenizerTestBase {

    @Test
    void thePromptIsTheUserTurnOfTheTemplateWithTheGenerationCue() throws Exception {
        ChatPrompt plain = ChatPrompt.of("default", null, null, true, tokenizer, line -> { });
        // default: "Human: {{content}}" eos "\nAssistant:"
        assertArrayEquals(ids("Human", ":", "hi", "</s>", "\n", "Assistant", ":"), plain.encode("hi", null));
        // a system prompt comes first, in the system slot: "System: {{content}}" eos "\n"
        assertArrayEquals(ids("System", ":", "be", "nice", "</s>", "\n", "Human", ":", "hi", "</s>", "\n", "Assistant",
                ":"), plain.encode("hi", "be nice"));
        assertEquals(Set.of(ids("</s>")[0]), plain.stopIds());
    }

    @Test
    void chatmlStopsAtImEndAndWithoutATemplateThePromptIsTheText() throws Exception {
        try (TemplateTokenizer qwen = TemplateTokenizer.open(TinyTokenizer.write(dir.resolve("qwen"),
                Map.of("eos_token", "</s>")))) {
            ChatPrompt chatml = ChatPrompt.of("chatml", null, null, true, qwen, line -> { });
            assertArrayEquals(ids("<|im_start|>", "user", "\n", "hi", "<|im_end|>", "\n", "<|im_start|>", "assistant",
                    "\n"), chatml.encode("hi", null));
            // chatml's stop words are <|im_end|> (which replaces the eos) and <|im_start|>
            assertEquals(Set.of(ids("<|im_end|>")[0], ids("<|im_start|>")[0]), chatml.stopIds());
            List<String> said = new ArrayList<>();
            ChatPrompt none = ChatPrompt.of(null, null, null, true, qwen, said::add);
            assertEquals("empty", none.templateName());
            assertArrayEquals(ids("hi", "there"), none.encode("hi there", null));
            assertEquals(1, said.size());
        }
    }
}
