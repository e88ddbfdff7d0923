package io.qlora4j.model.safetensors;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SortedMap;

/**
 * The Hugging Face shard index, {@code <base>.safetensors.index.json}:
 * {@code {"metadata": {"total_size": bytes}, "weight_map": {tensor: shard file}}}, and the
 * {@code <base>-0000K-of-0000N.safetensors} shard names it points to.
 */
final class ShardIndex {

    /** The file name {@link SafetensorsReader#open} looks for first in a directory. */
    static final String DEFAULT_INDEX = "model.safetensors.index.json";
    static final String INDEX_SUFFIX = ".safetensors.index.json";

    private static final ObjectMapper JSON = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
    /** Python's {@code json.dumps(indent=2, sort_keys=True)} layout: two-space indent, {@code "key": value}. */
    private static final ObjectWriter PRETTY = JSON.writer(new DefaultPrettyPrinter()
            .withSeparators(Separators.createDefaultInstance().withObjectFieldValueSpacing(Separators.Spacing.AFTER))
            .withObjectIndenter(new DefaultIndenter("  ", "\n")));

    private ShardIndex() {
    }

    /** The shard file name for shard {@code k} (1-based) of {@code n}. */
    static String shardName(String baseName, int k, int n) {
        return String.format("%s-%05d-of-%05d.safetensors", baseName, k, n);
    }

    /** Reads an index file's weight map (tensor name to shard file name), in file order. */
    static Map<String, String> readWeightMap(Path indexFile) throws ModelException {
        JsonNode root;
        try {
            root = JSON.readTree(indexFile.toFile());
        } catch (IOException e) {
            throw new ModelException(indexFile + ": cannot read shard index: " + e.getMessage().split("\n", 2)[0], e);
        }
        JsonNode weightMap = root == null ? null : root.get("weight_map");
        if (weightMap == null || !weightMap.isObject()) {
            throw new ModelException(indexFile + ": shard index needs a \"weight_map\" object of tensor name to file name");
        }
        Map<String, String> result = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = weightMap.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            if (!entry.getValue().isTextual()) {
                throw new ModelException(indexFile + ": weight_map entry for tensor '" + entry.getKey() + "' is not a file name");
            }
            result.put(entry.getKey(), entry.getValue().textValue());
        }
        return result;
    }

    /** The index JSON as transformers writes it: sorted keys, two-space indent, trailing newline. */
    static byte[] toJson(long totalSize, SortedMap<String, String> weightMap) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.putObject("metadata").put("total_size", totalSize);
        ObjectNode map = root.putObject("weight_map");
        weightMap.forEach(map::put);
        return (PRETTY.writeValueAsString(root) + "\n").getBytes(StandardCharsets.UTF_8);
    }
}
