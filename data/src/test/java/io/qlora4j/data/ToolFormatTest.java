package io.qlora4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.Test;

import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.Locale;

/** Expected strings are the output of LLaMA-Factory's tool_utils.py (commit ff6d4d1) on the same input. */
class ToolFormatTest {

    static final String TOOLS = "[{\"name\": \"get_weather\", \"description\": \"Weather of a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"the city\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"]}, \"days\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"}}}, \"required\": [\"city\"]}}]";
    static final String CALL = "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"K\u00f6ln\\n\\\"x\\\"\", \"n\": 1.0, \"m\": 1e-05, \"big\": 1e16, \"i\": 3, \"ok\": true, \"z\": null, \"l\": []}}";
    static final String DEFAULT_TOOLS = "You have access to the following tools:\n> Tool Name: get_weather\nTool Description: Weather of a city\nTool Args:\n  - city (string, required): the city\n  - unit (string): , should be one of [c, f]\n  - days (array): , where each item should be integer\n\nUse the following format if using a tool:\n```\nAction: tool name (one of [get_weather])\nAction Input: the input to the tool, in a JSON format representing the kwargs (e.g. ```{\"input\": \"hello world\", \"num_beams\": 5}```)\n```\n";
    static final String DEFAULT_CALL = "Action: get_weather\nAction Input: {\"city\": \"K\u00f6ln\\n\\\"x\\\"\", \"n\": 1.0, \"m\": 1e-05, \"big\": 1e+16, \"i\": 3, \"ok\": true, \"z\": null, \"l\": []}";
    static final String QWEN_TOOLS = "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather of a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"the city\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"]}, \"days\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"}}}, \"required\": [\"city\"]}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>";
    static final String QWEN_CALL = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"K\u00f6ln\\n\\\"x\\\"\", \"n\": 1.0, \"m\": 1e-05, \"big\": 1e+16, \"i\": 3, \"ok\": true, \"z\": null, \"l\": []}}\n</tool_call>";
    static final String MISTRAL_TOOLS = "[AVAILABLE_TOOLS] [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather of a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"the city\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"]}, \"days\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"}}}, \"required\": [\"city\"]}}}][/AVAILABLE_TOOLS]";
    static final String MISTRAL_CALL = "[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"K\u00f6ln\\n\\\"x\\\"\", \"n\": 1.0, \"m\": 1e-05, \"big\": 1e+16, \"i\": 3, \"ok\": true, \"z\": null, \"l\": []}}]";
    static final String LLAMA3_TOOLS = "Cutting Knowledge Date: December 2023\nToday Date: @DATE@\n\nYou have access to the following functions. To call a function, please respond with JSON for a function call. Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}. Do not use variables.\n\n{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n        \"description\": \"Weather of a city\",\n        \"parameters\": {\n            \"type\": \"object\",\n            \"properties\": {\n                \"city\": {\n                    \"type\": \"string\",\n                    \"description\": \"the city\"\n                },\n                \"unit\": {\n                    \"type\": \"string\",\n                    \"enum\": [\n                        \"c\",\n                        \"f\"\n                    ]\n                },\n                \"days\": {\n                    \"type\": \"array\",\n                    \"items\": {\n                        \"type\": \"integer\"\n                    }\n                }\n            },\n            \"required\": [\n                \"city\"\n            ]\n        }\n    }\n}\n\n";
    static final String LLAMA3_CALL = "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"K\u00f6ln\\n\\\"x\\\"\", \"n\": 1.0, \"m\": 1e-05, \"big\": 1e+16, \"i\": 3, \"ok\": true, \"z\": null, \"l\": []}}";

    @Test
    void toolDescriptionsMatchLlamaFactoryPerFormat() {
        String today = LocalDate.now().format(DateTimeFormatter.ofPattern("dd MMM yyyy", Locale.ENGLISH));
        assertEquals(DEFAULT_TOOLS, ToolFormat.DEFAULT.describe(TOOLS));
        assertEquals(QWEN_TOOLS, ToolFormat.QWEN.describe(TOOLS));
        assertEquals(MISTRAL_TOOLS, ToolFormat.MISTRAL.describe(TOOLS));
        assertEquals(LLAMA3_TOOLS.replace("@DATE@", today), ToolFormat.LLAMA3.describe(TOOLS));
        assertEquals("", ToolFormat.QWEN.describe("[]"));
    }

    @Test
    void functionCallsMatchLlamaFactoryPerFormat() {
        assertEquals(DEFAULT_CALL, ToolFormat.DEFAULT.call(CALL, true));
        assertEquals(QWEN_CALL, ToolFormat.QWEN.call(CALL, true));
        assertEquals(MISTRAL_CALL, ToolFormat.MISTRAL.call(CALL, false));
        assertEquals(LLAMA3_CALL, ToolFormat.LLAMA3.call(CALL, true));
    }

    @Test
    void toolCallBlockAndThoughtKeepTheTextAroundThem() {
        assertEquals("let me check" + QWEN_CALL, ToolFormat.QWEN.call("let me check<tool_call>" + CALL + "</tool_call>",
                true));
        assertEquals("<think>\nhmm\n</think>\n\n" + QWEN_CALL, ToolFormat.QWEN.call("<think>\nhmm\n</think>\n\n" + CALL,
                true));
        assertThrows(IllegalArgumentException.class, () -> ToolFormat.MISTRAL.call("<tool_call>" + CALL + "</tool_call>",
                false));
        assertEquals("function call needs 'name' and 'arguments'", assertThrows(IllegalArgumentException.class,
                () -> ToolFormat.DEFAULT.call("{\"name\": \"x\"}", true)).getMessage());
    }

    @Test
    void pythonJsonWritesFloatsAndIndentAsPython() throws Exception {
        // values from Python 3: repr(v) / json.dumps(v)
        assertEquals("1.0", PythonJson.floatRepr(1.0));
        assertEquals("0.1", PythonJson.floatRepr(0.1));
        assertEquals("1e-05", PythonJson.floatRepr(1e-05));
        assertEquals("0.0001", PythonJson.floatRepr(0.0001));
        assertEquals("1e+16", PythonJson.floatRepr(1e16));
        assertEquals("1.2345678901234568e+17", PythonJson.floatRepr(123456789012345680.0));
        assertEquals("1.5e+300", PythonJson.floatRepr(1.5e300));
        assertEquals("-2.5", PythonJson.floatRepr(-2.5));
        assertEquals("1000000000000000.0", PythonJson.floatRepr(1e15));
        // where Java 17's Double.toString gives more digits than the shortest that reads back (JDK-4511638)
        assertEquals("2.82879384806159e+17", PythonJson.floatRepr(2.82879384806159e17));
        assertEquals("1.9036921528432902e+17", PythonJson.floatRepr(1.90369215284329024e17));
        assertEquals("5.082622986511053e+16", PythonJson.floatRepr(5.0826229865110528e16));
        assertEquals("2e+23", PythonJson.floatRepr(2e23));
        assertEquals("8.41e+21", PythonJson.floatRepr(8.41e21));
        assertEquals("1e+23", PythonJson.floatRepr(1e23));
        assertEquals("5e-324", PythonJson.floatRepr(Double.MIN_VALUE));
        assertEquals("2.2250738585072014e-308", PythonJson.floatRepr(Double.MIN_NORMAL));
        assertEquals("1.152921504606847e+18", PythonJson.floatRepr(0x1p60));
        assertEquals("9.313225746154785e-10", PythonJson.floatRepr(0x1p-30));
        assertEquals("{\n    \"a\": \"\\u0001\\t\",\n    \"b\": {\n        \"c\": []\n    },\n    \"d\": {}\n}",
                PythonJson.dumpsIndented(new ObjectMapper().readTree("{\"a\": \"\\u0001\\t\", \"b\": {\"c\": []}, \"d\": {}}")));
    }
}
