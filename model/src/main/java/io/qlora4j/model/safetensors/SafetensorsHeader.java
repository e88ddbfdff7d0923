package io.qlora4j.model.safetensors;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.ModelException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The parsed and validated header of one safetensors file: its {@code __metadata__} and its
 * tensors in header order, with absolute file offsets. Validation is strict so that a damaged
 * or truncated download fails on open with one line naming the file and tensor.
 */
record SafetensorsHeader(Map<String, String> metadata, List<TensorInfo> tensors) {

    /** Largest header accepted; real headers are well under a megabyte even for 65B models. */
    static final long MAX_HEADER_BYTES = 100_000_000L;
    static final String METADATA_KEY = "__metadata__";

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** Reads and validates the header of {@code file}, whose content {@code channel} reads. */
    static SafetensorsHeader read(Path file, FileChannel channel) throws ModelException {
        String where = file + ": ";
        try {
            long fileSize = channel.size();
            if (fileSize < 8) {
                throw new ModelException(where + "file is " + fileSize + " bytes, too short for the 8-byte header length");
            }
            long headerLength = readFully(channel, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
            if (headerLength < 2 || headerLength > MAX_HEADER_BYTES) {
                throw new ModelException(where + "header length " + Long.toUnsignedString(headerLength)
                        + " is not plausible (expected 2 to " + MAX_HEADER_BYTES + " bytes)");
            }
            if (headerLength > fileSize - 8) {
                throw new ModelException(where + "header length " + headerLength + " runs past the end of the file ("
                        + fileSize + " bytes)");
            }
            JsonNode root = parseJson(where, readFully(channel, 8, (int) headerLength));
            long dataStart = 8 + headerLength;
            return fromJson(file, root, dataStart, fileSize - dataStart);
        } catch (IOException e) {
            throw new ModelException(where + "cannot read: " + e.getMessage(), e);
        }
    }

    private static JsonNode parseJson(String where, ByteBuffer bytes) throws ModelException {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes).toString();
        } catch (CharacterCodingException e) {
            throw new ModelException(where + "header is not valid UTF-8", e);
        }
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new ModelException(where + "header is not valid JSON: " + e.getOriginalMessage().replace('\n', ' '), e);
        }
        if (root == null || !root.isObject()) {
            throw new ModelException(where + "header JSON must be an object, found " + (root == null ? "nothing" : root.getNodeType()));
        }
        return root;
    }

    private static SafetensorsHeader fromJson(Path file, JsonNode root, long dataStart, long dataSize) throws ModelException {
        Map<String, String> metadata = new LinkedHashMap<>();
        List<TensorInfo> tensors = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            if (field.getKey().equals(METADATA_KEY)) {
                readMetadata(file, field.getValue(), metadata);
            } else {
                tensors.add(tensor(file, field.getKey(), field.getValue(), dataStart, dataSize));
            }
        }
        checkContiguous(file, tensors, dataStart, dataStart + dataSize);
        return new SafetensorsHeader(Collections.unmodifiableMap(metadata), List.copyOf(tensors));
    }

    private static void readMetadata(Path file, JsonNode node, Map<String, String> into) throws ModelException {
        if (!node.isObject()) {
            throw new ModelException(file + ": " + METADATA_KEY + " must be an object of strings, found " + node.getNodeType());
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            if (!entry.getValue().isTextual()) {
                throw new ModelException(file + ": " + METADATA_KEY + " value for '" + entry.getKey()
                        + "' is not a string: " + entry.getValue());
            }
            into.put(entry.getKey(), entry.getValue().textValue());
        }
    }

    private static TensorInfo tensor(Path file, String name, JsonNode node, long dataStart, long dataSize) throws ModelException {
        String where = file + ": tensor '" + name + "': ";
        if (!node.isObject()) {
            throw new ModelException(where + "entry must be an object with dtype, shape and data_offsets");
        }
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual()) {
            throw new ModelException(where + "missing or non-string dtype");
        }
        DType dtype;
        try {
            dtype = DType.fromName(dtypeNode.textValue());
        } catch (IllegalArgumentException e) {
            throw new ModelException(where + e.getMessage(), e);
        }
        long[] shape = longs(where, node.get("shape"), "shape", -1);
        for (long d : shape) {
            if (d < 0) {
                throw new ModelException(where + "negative dimension " + d + " in shape " + Arrays.toString(shape));
            }
        }
        long[] offsets = longs(where, node.get("data_offsets"), "data_offsets", 2);
        long begin = offsets[0];
        long end = offsets[1];
        if (begin < 0 || begin > end) {
            throw new ModelException(where + "data_offsets " + Arrays.toString(offsets) + " are not [begin, end] with 0 <= begin <= end");
        }
        if (end > dataSize) {
            throw new ModelException(where + "data_offsets end " + end + " is past the data section of " + dataSize
                    + " bytes (truncated file?)");
        }
        long needed;
        try {
            needed = Math.multiplyExact(TensorInfo.numel(shape), dtype.size());
        } catch (ArithmeticException e) {
            throw new ModelException(where + "shape " + Arrays.toString(shape) + " is too large", e);
        }
        if (needed != end - begin) {
            throw new ModelException(where + "shape " + Arrays.toString(shape) + " of " + dtype + " needs " + needed
                    + " bytes but data_offsets span " + (end - begin));
        }
        return new TensorInfo(name, dtype, shape, file, dataStart + begin, dataStart + end);
    }

    /** A JSON array of integers that fit a long; {@code length} -1 accepts any length. */
    private static long[] longs(String where, JsonNode node, String key, int length) throws ModelException {
        String expected = key + " must be an array of " + (length < 0 ? "" : length + " ") + "integers";
        if (node == null || !node.isArray() || (length >= 0 && node.size() != length)) {
            throw new ModelException(where + expected + ", found " + (node == null ? "nothing" : node.toString()));
        }
        long[] values = new long[node.size()];
        for (int i = 0; i < values.length; i++) {
            JsonNode element = node.get(i);
            if (!element.isIntegralNumber() || !element.canConvertToLong()) {
                throw new ModelException(where + expected + ", found " + node);
            }
            values[i] = element.longValue();
        }
        return values;
    }

    /** Checks that the ranges, sorted, tile the data section exactly: no overlap, no gap, no trailing bytes. */
    private static void checkContiguous(Path file, List<TensorInfo> tensors, long dataStart, long fileEnd)
            throws ModelException {
        List<TensorInfo> sorted = new ArrayList<>(tensors);
        sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long expected = dataStart;
        TensorInfo previous = null;
        for (TensorInfo t : sorted) {
            if (t.begin() < expected) {
                throw new ModelException(file + ": tensor '" + t.name() + "' overlaps tensor '" + previous.name() + "'");
            }
            if (t.begin() > expected) {
                throw new ModelException(file + ": gap of " + (t.begin() - expected) + " bytes before tensor '" + t.name() + "'");
            }
            expected = t.end();
            previous = t;
        }
        if (expected < fileEnd) {
            throw new ModelException(file + ": " + (fileEnd - expected) + " unused bytes after the last tensor");
        }
    }

    private static ByteBuffer readFully(FileChannel channel, long position, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, position + buffer.position()) < 0) {
                throw new IOException("unexpected end of file");
            }
        }
        return buffer.flip();
    }
}
