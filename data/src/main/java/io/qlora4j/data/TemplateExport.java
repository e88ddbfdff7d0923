package io.qlora4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.regex.Pattern;

/**
 * What LLaMA-Factory's export ({@code export_model}) writes for the job's template beside the merged weights: the
 * tokenizer as the template fixes it ({@code fix_special_tokens}: eos replaced by the first stop word where the
 * template says so, the eos as pad where there is none; padding side left), the template as the tokenizer's chat
 * template where it has none or the template replaces it ({@code fix_jinja_template}, saved as transformers 5 saves
 * one: {@code chat_template.jinja}), and an Ollama {@code Modelfile} ({@code get_ollama_modelfile}). A template's
 * other stop words stay out of the tokenizer (qlora4j adds no tokens; the Modelfile names them).
 */
public final class TemplateExport {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final ChatTemplate template;
    private final TemplateTokenizer tokenizer;
    // taken while the tokenizer is open: the eos after the template's fixes (null: none), the chat template to
    // write (null: the tokenizer's stays), the Modelfile
    private final String eosToken;
    private final String jinja;
    private final String modelfile;

    private TemplateExport(ChatTemplate template, TemplateTokenizer tokenizer, boolean writesJinja) {
        this.template = template;
        this.tokenizer = tokenizer;
        this.eosToken = tokenizer.eosToken();
        this.jinja = writesJinja ? jinja() : null;
        this.modelfile = modelfile();
    }

    /**
     * The export of template {@code name} (null: as a job without {@code template} resolves it, said to {@code log})
     * with the data keys that adjust a template, over {@code tokenizer}, which stays the caller's (and may be closed
     * once this returns).
     *
     * @throws DataException naming the template or token at fault
     */
    public static TemplateExport of(String name, String defaultSystem, String toolFormat, boolean enableThinking,
            TemplateTokenizer tokenizer, Consumer<String> log) throws DataException {
        ChatTemplate template = ChatTemplate.resolve(name, tokenizer.file(), log)
                .configured(defaultSystem, toolFormat, enableThinking);
        ChatTemplateDetector.Found found = ChatTemplateDetector.read(
                tokenizer.file().resolveSibling("tokenizer_config.json"));
        boolean none = found.text() == null && !found.named();
        return new TemplateExport(template, template.bind(tokenizer), none || template.replacesJinjaTemplate());
    }

    /**
     * Rewrites the tokenizer_config.json a model directory {@code dir} holds (copied from the base), writes its
     * chat_template.jinja where the template becomes the chat template, and its Modelfile.
     */
    public void writeTo(Path dir) throws IOException {
        Path config = dir.resolve("tokenizer_config.json");
        ObjectNode fields = Files.isRegularFile(config) && JSON.readTree(config.toFile()) instanceof ObjectNode o
                ? o : JSON.createObjectNode();
        if (eosToken != null) {
            fields.put("eos_token", eosToken);
            JsonNode pad = fields.path("pad_token");
            if (!pad.isTextual() && !pad.path("content").isTextual()) {
                fields.put("pad_token", eosToken);
            }
        }
        fields.put("padding_side", "left");
        if (jinja != null) {
            fields.remove("chat_template");
            Files.writeString(dir.resolve("chat_template.jinja"), jinja, StandardCharsets.UTF_8);
        }
        Files.writeString(config, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(fields) + "\n",
                StandardCharsets.UTF_8);
        Files.writeString(dir.resolve("Modelfile"), modelfile, StandardCharsets.UTF_8);
    }

    /**
     * The template as a Jinja chat template, as {@code Template._get_jinja_template} writes it (Llama 2's layout
     * as {@code Llama2Template}'s): each slot list a {@code +} of quoted texts, the content variable and the
     * tokenizer's bos or eos text.
     */
    private String jinja() {
        String prefix = jinjaSlots(template.prefix(), "content");
        String system = jinjaSlots(template.system(), "system_message");
        String user = jinjaSlots(template.user(), "content");
        String assistant = jinjaSlots(template.assistant(), "content");
        StringBuilder out = new StringBuilder();
        if (!prefix.isEmpty()) {
            out.append("{{ ").append(prefix).append(" }}");
        }
        if (!template.defaultSystem().isEmpty()) {
            out.append("{% set system_message = '").append(escape(template.defaultSystem())).append("' %}");
        }
        out.append("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
                + "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
                + "{% endif %}");
        if (template.systemInFirstUser()) {
            out.append("{% for message in loop_messages %}{% if loop.index0 == 0 and system_message is defined %}"
                    + "{% set content = ").append(system).append(" + message['content'] %}"
                    + "{% else %}{% set content = message['content'] %}{% endif %}");
        } else {
            out.append("{% if system_message is defined %}{{ ").append(system).append(" }}{% endif %}"
                    + "{% for message in loop_messages %}{% set content = message['content'] %}");
        }
        out.append("{% if message['role'] == 'user' %}{{ ").append(user)
                .append(" }}{% elif message['role'] == 'assistant' %}{{ ").append(assistant)
                .append(" }}{% endif %}{% endfor %}");
        return out.toString();
    }

    /** The Ollama Modelfile, as {@code get_ollama_modelfile} writes it (this tool named in its first line). */
    private String modelfile() {
        String prefix = ollamaSlots(template.prefix(), ".Content");
        String system = ollamaSlots(template.system(), ".System");
        String user = ollamaSlots(template.user(), ".Content");
        String assistant = ollamaSlots(template.assistant(), ".Content");
        StringBuilder out = new StringBuilder("# ollama modelfile auto-generated by qlora4j\n\nFROM .\n\n");
        out.append("TEMPLATE \"\"\"").append(prefix).append("{{ if .System }}").append(system).append("{{ end }}")
                .append("{{ range .Messages }}{{ if eq .Role \"user\" }}").append(user)
                .append("{{ else if eq .Role \"assistant\" }}").append(assistant).append("{{ end }}{{ end }}")
                .append("\"\"\"\n\n");
        if (!template.defaultSystem().isEmpty()) {
            out.append("SYSTEM \"\"\"").append(template.defaultSystem()).append("\"\"\"\n\n");
        }
        for (int id : pythonSetOrder(template.stopIds(tokenizer))) {
            out.append("PARAMETER stop \"").append(tokenizer.decode(new int[] {id})).append("\"\n");
        }
        return out.append("PARAMETER num_ctx 4096\n").toString();
    }

    /**
     * Non-negative ints (their own hashes) in the order CPython iterates a set they were added to in {@code added}'s
     * order: {@code get_stop_token_ids} returns a set, so the Modelfile's stop lines come in its table's slot order
     * (open addressing: 9 linear probes where the table has room, then {@code i = 5i + 1 + (perturb >>= 5)}; the table
     * grows to the first power of two above 4 x used once 5 x fill reaches 3 x mask, reinserting in slot order).
     */
    static List<Integer> pythonSetOrder(Collection<Integer> added) {
        Integer[] table = new Integer[8];
        int used = 0;
        for (int id : added) {
            if (Arrays.asList(table).contains(id)) {
                continue;
            }
            insert(table, id);
            used++;
            if (used * 5 >= (table.length - 1) * 3) {
                int size = 8;
                while (size <= used * 4) {
                    size <<= 1;
                }
                Integer[] grown = new Integer[size];
                for (Integer old : table) {
                    if (old != null) {
                        insert(grown, old);
                    }
                }
                table = grown;
            }
        }
        return Arrays.stream(table).filter(Objects::nonNull).toList();
    }

    private static void insert(Integer[] table, int hash) {
        int mask = table.length - 1;
        long perturb = hash;
        int i = hash & mask;
        while (true) {
            int probes = i + 9 <= mask ? 9 : 0;
            for (int j = 0; j <= probes; j++) {
                if (table[i + j] == null) {
                    table[i + j] = hash;
                    return;
                }
            }
            perturb >>>= 5;
            i = (int) ((i * 5L + 1 + perturb) & mask);
        }
    }

    /** {@code _convert_slots_to_jinja}: quoted texts around {@code placeholder}, joined by {@code +}. */
    private String jinjaSlots(SlotFormatter slots, String placeholder) {
        List<String> items = new ArrayList<>();
        for (Slot slot : slots.slots()) {
            switch (slot.kind()) {
                case TEXT -> {
                    String[] pieces = slot.text().split(Pattern.quote(SlotFormatter.PLACEHOLDER), -1);
                    if (!pieces[0].isEmpty()) {
                        items.add("'" + escape(pieces[0]) + "'");
                    }
                    if (pieces.length > 1) {
                        items.add(placeholder);
                        if (!pieces[1].isEmpty()) {
                            items.add("'" + escape(pieces[1]) + "'");
                        }
                    }
                }
                case BOS, EOS -> {
                    String token = specialText(slot);
                    if (token != null) {
                        items.add("'" + token + "'");
                    }
                }
            }
        }
        return String.join(" + ", items);
    }

    /** {@code _convert_slots_to_ollama}: the texts with {@code {{ placeholder }}} for the content, joined. */
    private String ollamaSlots(SlotFormatter slots, String placeholder) {
        StringBuilder out = new StringBuilder();
        for (Slot slot : slots.slots()) {
            switch (slot.kind()) {
                case TEXT -> {
                    String[] pieces = slot.text().split(Pattern.quote(SlotFormatter.PLACEHOLDER), -1);
                    out.append(pieces[0]);
                    if (pieces.length > 1) {
                        out.append("{{ ").append(placeholder).append(" }}").append(pieces[1]);
                    }
                }
                case BOS, EOS -> {
                    String token = specialText(slot);
                    if (token != null) {
                        out.append(token);
                    }
                }
            }
        }
        return out.toString();
    }

    /** The text of the bos or eos token a slot stands for, null when the tokenizer has none. */
    private String specialText(Slot slot) {
        int id = slot.kind() == Slot.Kind.BOS ? tokenizer.bosId() : tokenizer.eosId();
        return id < 0 ? null : tokenizer.decode(new int[] {id});
    }

    /** {@code _jinja_escape}: single quotes escaped. */
    private static String escape(String text) {
        return text.replace("'", "\\'");
    }
}
