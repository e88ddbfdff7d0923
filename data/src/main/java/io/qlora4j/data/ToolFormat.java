package io.qlora4j.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How a template writes tool descriptions (into the system prompt) and function calls (assistant
 * turns), as LLaMA-Factory's {@code tool_utils.py} tool formats of the same names and its
 * {@code FunctionFormatter}. A call is JSON {@code {"name", "arguments"}} or a list of them,
 * optionally inside {@code <tool_call>...</tool_call>} with text around it.
 */
enum ToolFormat {
    /** The ReAct-style {@code Action: / Action Input:} format. */
    DEFAULT,
    /** Llama 3.1 JSON tool calling ({@code tools_in_user_message=False}), dated today as LLaMA-Factory does. */
    LLAMA3,
    /** Mistral v0.3 {@code [AVAILABLE_TOOLS]}. */
    MISTRAL,
    /** Qwen 2.5 {@code <tools>} / {@code <tool_call>}. */
    QWEN;

    private static final String DEFAULT_PROMPT = "You have access to the following tools:\n%s"
            + "Use the following format if using a tool:\n```\nAction: tool name (one of [%s])\n"
            + "Action Input: the input to the tool, in a JSON format representing the kwargs "
            + "(e.g. ```{\"input\": \"hello world\", \"num_beams\": 5}```)\n```\n";
    private static final String LLAMA3_PROMPT = "Cutting Knowledge Date: December 2023\nToday Date: %s\n\n"
            + "You have access to the following functions. To call a function, please respond with JSON for a "
            + "function call. Respond in the format {\"name\": function name, \"parameters\": dictionary of "
            + "argument name and its value}. Do not use variables.\n\n%s";
    private static final String QWEN_PROMPT = "\n\n# Tools\n\nYou may call one or more functions to assist with "
            + "the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n"
            + "<tools>%s\n</tools>\n\nFor each function call, return a json object with function name and "
            + "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
            + "\"arguments\": <args-json-object>}\n</tool_call>";
    private static final Pattern TOOL_CALL = Pattern.compile("<tool_call>(.*?)</tool_call>", Pattern.DOTALL);
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    /** LLaMA-Factory's other tool formats ({@code tool_utils.TOOLS}), refused by name until implemented. */
    static final List<String> PLANNED = List.of("gemma4", "glm4", "glm4_moe", "lfm2", "ling", "minimax1", "minimax2",
            "qwen3_5", "seed_oss");

    /** One function call: its name and its arguments as Python-dumped JSON text. */
    private record Call(String name, JsonNode arguments) {
    }

    /** The format LLaMA-Factory's {@code tool_format} key names; refuses the unimplemented and unknown ones. */
    static ToolFormat named(String name) throws DataException {
        for (ToolFormat format : values()) {
            if (format.key().equals(name)) {
                return format;
            }
        }
        String known = String.join(", ", Arrays.stream(values()).map(ToolFormat::key).toList());
        throw new DataException("tool_format: '" + name + "' " + (PLANNED.contains(name)
                ? "is not implemented yet" : "is not a tool format") + " (available: " + known + ")");
    }

    /** The name LLaMA-Factory gives this format. */
    String key() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The tool description text for the system prompt, from the record's tools JSON (a list). */
    String describe(String toolsJson) {
        JsonNode tools = parse(toolsJson, "tool description");
        if (!tools.isArray()) {
            throw new IllegalArgumentException("tools must be a JSON list");
        }
        if (tools.isEmpty()) {
            return "";
        }
        StringBuilder text = new StringBuilder();
        switch (this) {
            case DEFAULT -> {
                List<String> names = new ArrayList<>();
                for (JsonNode tool : tools) {
                    JsonNode function = "function".equals(tool.path("type").asText()) ? tool.path("function") : tool;
                    text.append("> Tool Name: ").append(function.path("name").asText()).append("\nTool Description: ")
                            .append(function.path("description").asText("")).append("\nTool Args:\n")
                            .append(defaultArgs(function)).append('\n');
                    names.add(function.path("name").asText());
                }
                return String.format(DEFAULT_PROMPT, text, String.join(", ", names));
            }
            case LLAMA3 -> {
                for (JsonNode tool : tools) {
                    text.append(PythonJson.dumpsIndented(wrapped(tool))).append("\n\n");
                }
                String date = LocalDate.now().format(DateTimeFormatter.ofPattern("dd MMM yyyy", Locale.ENGLISH));
                return String.format(LLAMA3_PROMPT, date, text);
            }
            case MISTRAL -> {
                ArrayNode list = NODES.arrayNode();
                tools.forEach(tool -> list.add(wrapped(tool)));
                return "[AVAILABLE_TOOLS] " + PythonJson.dumps(list) + "[/AVAILABLE_TOOLS]";
            }
            default -> {
                for (JsonNode tool : tools) {
                    text.append('\n').append(PythonJson.dumps(wrapped(tool)));
                }
                return String.format(QWEN_PROMPT, text);
            }
        }
    }

    /**
     * A function-call turn's text: the JSON call(s) written in this format; with
     * {@code findWords} (all but the Llama-2-style templates) a {@code <tool_call>} block or a
     * leading {@code <think>} block is located first and the text around it kept.
     */
    String call(String content, boolean findWords) {
        Matcher toolCall = findWords ? TOOL_CALL.matcher(content) : null;
        if (toolCall != null && toolCall.find()) {
            String around = content.replace(toolCall.group(0), "");
            return around + functions(calls(toolCall.group(1)));
        }
        Matcher thought = findWords ? Thoughts.BLOCK.matcher(content) : null;
        if (thought != null && thought.find()) {
            return thought.group(0) + functions(calls(content.replace(thought.group(0), "")));
        }
        return functions(calls(content));
    }

    private String functions(List<Call> calls) {
        List<String> parts = new ArrayList<>();
        switch (this) {
            case DEFAULT -> {
                for (Call call : calls) {
                    parts.add("Action: " + call.name() + "\nAction Input: " + PythonJson.dumps(call.arguments()));
                }
                return String.join("\n", parts);
            }
            case LLAMA3 -> {
                ArrayNode list = NODES.arrayNode();
                for (Call call : calls) {
                    ObjectNode object = list.addObject();
                    object.put("name", call.name());
                    object.set("parameters", call.arguments());
                }
                return PythonJson.dumps(list.size() == 1 ? list.get(0) : list);
            }
            case MISTRAL -> {
                ArrayNode list = NODES.arrayNode();
                for (Call call : calls) {
                    list.add(nameAndArguments(call));
                }
                return PythonJson.dumps(list);
            }
            default -> {
                for (Call call : calls) {
                    parts.add("<tool_call>\n" + PythonJson.dumps(nameAndArguments(call)) + "\n</tool_call>");
                }
                return String.join("\n", parts);
            }
        }
    }

    private static ObjectNode nameAndArguments(Call call) {
        ObjectNode object = NODES.objectNode();
        object.put("name", call.name());
        object.set("arguments", call.arguments());
        return object;
    }

    private static List<Call> calls(String json) {
        JsonNode node = parse(json, "function call");
        List<Call> calls = new ArrayList<>();
        for (JsonNode call : node.isArray() ? node : NODES.arrayNode().add(node)) {
            if (!call.has("name") || !call.has("arguments")) {
                throw new IllegalArgumentException("function call needs 'name' and 'arguments'");
            }
            calls.add(new Call(call.get("name").asText(), call.get("arguments")));
        }
        return calls;
    }

    /** The "  - name (type, required): description, should be one of [...], ..." lines of the default format. */
    private static String defaultArgs(JsonNode function) {
        JsonNode parameters = function.path("parameters");
        StringBuilder args = new StringBuilder();
        List<String> required = new ArrayList<>();
        parameters.path("required").forEach(r -> required.add(r.asText()));
        for (var e : parameters.path("properties").properties()) {
            JsonNode param = e.getValue();
            args.append("  - ").append(e.getKey()).append(" (").append(param.path("type").asText(""))
                    .append(required.contains(e.getKey()) ? ", required" : "").append("): ")
                    .append(param.path("description").asText(""));
            if (param.path("enum").isArray() && !param.path("enum").isEmpty()) {
                List<String> values = new ArrayList<>();
                param.get("enum").forEach(v -> values.add(v.asText()));
                args.append(", should be one of [").append(String.join(", ", values)).append(']');
            }
            if (param.has("items") && !param.get("items").isEmpty()) {
                args.append(", where each item should be ").append(param.get("items").path("type").asText(""));
            }
            args.append('\n');
        }
        return args.toString();
    }

    private static JsonNode wrapped(JsonNode tool) {
        if ("function".equals(tool.path("type").asText())) {
            return tool;
        }
        ObjectNode wrapper = NODES.objectNode();
        wrapper.put("type", "function");
        wrapper.set("function", tool);
        return wrapper;
    }

    private static JsonNode parse(String json, String what) {
        try {
            return RecordReader.JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("invalid JSON in " + what);
        }
    }
}
