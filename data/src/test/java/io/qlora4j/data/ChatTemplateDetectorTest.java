package io.qlora4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ChatTemplateDetectorTest {
    @TempDir
    Path dir;

    /** Writes tokenizer_config.json with the given chat_template value and returns the tokenizer.json beside it. */
    private Path withChatTemplate(Object chatTemplate) throws Exception {
        Files.writeString(dir.resolve("tokenizer_config.json"),
                new ObjectMapper().writeValueAsString(Map.of("chat_template", chatTemplate)));
        return dir.resolve("tokenizer.json");
    }

    private String auto(Object chatTemplate) throws Exception {
        return ChatTemplate.resolve("auto", withChatTemplate(chatTemplate), line -> { }).name();
    }

    @Test
    void recognisesThePublishedTemplatesByTheirTurnMarkers() throws Exception {
        // Abridged from the chat_template strings the model families ship.
        assertEquals("llama3", auto("{% for message in messages %}{% set content = '<|start_header_id|>' + message['role']"
                + " + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}"));
        assertEquals("qwen", auto("{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]"
                + "['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba"
                + " Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"));
        assertEquals("chatml", auto("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                + "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"));
        assertEquals("llama2", auto("{% if messages[0]['role'] == 'system' %}{% set system_message = '<<SYS>>\\n' + "
                + "messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}{% endif %}{{ bos_token + '[INST] ' + content + ' [/INST]' }}"));
        assertEquals("mistral", auto("{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
                + "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}"));
    }

    @Test
    void recognisesTheNewFamiliesTemplates() throws Exception {
        // Abridged from the chat_template strings of Qwen3-8B, Qwen3-4B-Thinking-2507, Qwen3-4B-Instruct-2507,
        // gemma-2-9b-it, Phi-3-mini, phi-4, Phi-4-mini and Mistral-Small-24B-Instruct-2501.
        assertEquals("qwen3", auto("{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n"
                + "\\n</think>\\n\\n' }}{%- endif %}{{- '<|im_start|>' + message.role + '\\n' }}"));
        assertEquals("qwen3", auto("{{- '<|im_start|>' + message.role }}{%- if add_generation_prompt %}"
                + "{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}"));
        assertEquals("qwen3_nothink", auto("{%- if '</think>' in content %}{%- set content = content.split('</think>')"
                + "[-1] %}{%- endif %}{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' }}"
                + "{{- '<think>' }}"));
        String gemma = "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\\n' + "
                + "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}";
        assertEquals("gemma", auto(gemma));
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"gemma2\"}");
        assertEquals("gemma2", auto(gemma));
        assertEquals("phi", auto("{% for message in messages %}{% if message['role'] == 'user' %}{{'<|user|>' + '\\n'"
                + " + message['content'] + '<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}{% endif %}{% endfor %}"));
        assertEquals("phi4", auto("{% for message in messages %}{{'<|im_start|>' + message['role'] + '<|im_sep|>' + "
                + "message['content'] + '<|im_end|>'}}{% endfor %}"));
        assertEquals("phi4_mini", auto("{% for message in messages %}{% if message['role'] == 'system' and 'tools' in "
                + "message %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + message['tools'] + "
                + "'<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + "
                + "'<|end|>' }}{% endif %}{% endfor %}"));
        assertEquals("mistral_small", auto("{{- bos_token }}{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}"
                + "{{- '[INST]' + message['content'] + '[/INST]' }}"));
    }

    @Test
    void namedTemplateListUsesTheDefaultEntry() throws Exception {
        assertEquals("chatml", auto(List.of(Map.of("name", "tool_use", "template", "[INST] x [/INST]"),
                Map.of("name", "default", "template", "<|im_start|>{{ m }}<|im_end|>"))));
    }

    @Test
    void unknownShapeMissingTemplateAndMissingFileAreOneLine() throws Exception {
        String unknown = assertThrows(DataException.class, () -> auto("{{ messages | tojson }}")).getMessage();
        assertTrue(unknown.startsWith("template: auto: the chat_template in " + dir.resolve("tokenizer_config.json")
                + " matches none of the known shapes (llama3, qwen3, qwen, phi4"), unknown);
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"bos_token\": \"<s>\"}");
        String none = assertThrows(DataException.class,
                () -> ChatTemplate.resolve("auto", dir.resolve("tokenizer.json"), line -> { })).getMessage();
        assertTrue(none.contains("has no chat_template; set template: to one of"), none);
        Files.delete(dir.resolve("tokenizer_config.json"));
        String missing = assertThrows(DataException.class,
                () -> ChatTemplate.resolve("auto", dir.resolve("tokenizer.json"), line -> { })).getMessage();
        assertTrue(missing.endsWith("not found; set template: to one of " + ChatTemplate.names()), missing);
    }

    /** A chat_template that is neither text nor a list of named templates is refused, not taken for none. */
    @Test
    void aMistypedChatTemplateIsOneLineNamingTheFile() throws Exception {
        for (Object mistyped : new Object[] {5, true}) {
            Path tokenizer = withChatTemplate(mistyped);
            String message = assertThrows(DataException.class,
                    () -> ChatTemplate.resolve(null, tokenizer, line -> { })).getMessage();
            assertEquals(dir.resolve("tokenizer_config.json") + ": chat_template must be a string or a list of named"
                    + " templates, found " + new ObjectMapper().writeValueAsString(mistyped), message);
        }
    }

    /**
     * transformers reads {@code chat_template.jinja} beside the config before the config's {@code chat_template}, and
     * makes named templates (a list in the config, or files in {@code additional_chat_templates/}) a dict, which
     * LLaMA-Factory's {@code get_template_and_fix_tokenizer} does not parse: without {@code template} it takes
     * {@code empty}.
     */
    @Test
    void aJinjaFileComesFirstAndNamedTemplatesGiveEmptyWithoutATemplateKey() throws Exception {
        Path tokenizer = withChatTemplate("{% for m in messages %}[INST] {{ m }} [/INST]{% endfor %}");
        Files.writeString(dir.resolve("chat_template.jinja"), "{{'<|im_start|>' + m + '<|im_end|>'}}");
        List<String> log = new java.util.ArrayList<>();
        assertEquals("chatml", ChatTemplate.resolve(null, tokenizer, log::add).name());
        assertTrue(log.get(0).contains("recognised from the chat_template in " + dir.resolve("chat_template.jinja")),
                log.get(0));
        assertEquals("chatml", ChatTemplate.resolve("auto", tokenizer, line -> { }).name());

        Files.createDirectory(dir.resolve("additional_chat_templates"));
        Files.writeString(dir.resolve("additional_chat_templates").resolve("tool_use.jinja"), "[INST] x [/INST]");
        log.clear();
        assertEquals("empty", ChatTemplate.resolve(null, tokenizer, log::add).name());
        assertEquals("template: not set and " + dir.resolve("chat_template.jinja") + " holds named chat templates:"
                + " using empty, as LLaMA-Factory does", log.get(0));

        Files.delete(dir.resolve("additional_chat_templates").resolve("tool_use.jinja"));
        Files.delete(dir.resolve("chat_template.jinja"));
        withChatTemplate(List.of(Map.of("name", "default", "template", "<|im_start|>{{ m }}<|im_end|>")));
        assertEquals("empty", ChatTemplate.resolve(null, tokenizer, line -> { }).name());
        assertEquals("chatml", ChatTemplate.resolve("auto", tokenizer, line -> { }).name());
    }

    @Test
    void explicitNamesBypassDetection() throws Exception {
        assertEquals("alpaca", ChatTemplate.resolve("alpaca", dir.resolve("tokenizer.json"), line -> { }).name());
    }
}
