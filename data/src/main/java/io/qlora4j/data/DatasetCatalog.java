package io.qlora4j.data;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Resolves the {@code dataset:} list as LLaMA-Factory's {@code get_dataset_list}: each name is
 * an entry of {@code dataset_dir/dataset_info.json} ({@code file_name}, {@code formatting},
 * {@code columns}, {@code tags}, {@code num_samples}, {@code split}: only {@code train} exists for files); a name that is no entry but an existing file or folder is read
 * directly with the alpaca columns plus {@code system}/{@code history}: sharegpt when its first
 * record holds {@code conversations}, OpenAI-style sharegpt ({@code role}/{@code content}) when it
 * holds {@code messages}, plain text (prompt = {@code text}) when it holds {@code text}; a {@code .txt} file is
 * plain text, one record a line. Columns qlora4j cannot train on (images, videos, audios, preference pairs, KTO
 * labels, {@code ranking} entries) are refused naming the column and the stage they belong to.
 */
final class DatasetCatalog {

    static final String INFO_FILE = "dataset_info.json";
    /** The keys of a dataset_info.json entry that LLaMA-Factory reads for a local file ({@code file_sha1}: older). */
    private static final List<String> ENTRY_KEYS = List.of("file_name", "formatting", "ranking", "subset", "split",
            "folder", "num_samples", "columns", "tags", "file_sha1");
    /** The keys that make LLaMA-Factory load the dataset from elsewhere, before any file_name. */
    private static final Set<String> REMOTE_KEYS = Set.of("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url",
            "cloud_file_name");

    private DatasetCatalog() {
    }

    /** The datasets {@code names} in {@code datasetDir}; an unknown one is refused naming {@code key}, the job key. */
    static List<DatasetSpec> resolve(List<String> names, Path datasetDir, String key) throws DataException {
        if (datasetDir.toString().startsWith("REMOTE:") || datasetDir.toString().equals("ONLINE")) {
            throw new DataException("dataset_dir: " + datasetDir + ": only local datasets are supported; download the"
                    + " folder and give its path");
        }
        Path infoFile = datasetDir.resolve(INFO_FILE);
        JsonNode info = null;
        if (Files.isRegularFile(infoFile)) {
            try {
                info = RecordReader.JSON.readTree(infoFile.toFile());
            } catch (IOException e) {
                throw new DataException(infoFile + ": invalid JSON: " + RecordReader.firstLine(e.getMessage()), e);
            }
            if (info == null || !info.isObject()) {
                // a list or a scalar has no entries: every name would be reported unknown with "known: (none)"
                throw new DataException(infoFile + ": expected a JSON object of dataset entries, not "
                        + (info == null || info.isMissingNode() ? "an empty file"
                                : info.isArray() ? "a list" : "the " + info.getNodeType().name().toLowerCase(Locale.ROOT)
                                        + " " + info));
            }
        }
        List<DatasetSpec> specs = new ArrayList<>();
        for (String name : names) {
            if (info != null && info.has(name)) {
                specs.add(fromInfo(name, info.get(name), datasetDir, infoFile));
                continue;
            }
            Path direct = Path.of(name);
            if (!Files.exists(direct) && Files.exists(datasetDir.resolve(name))) {
                direct = datasetDir.resolve(name);
            }
            if (Files.exists(direct)) {
                specs.add(direct(name, direct));
                continue;
            }
            List<String> known = new ArrayList<>();
            if (info != null) {
                info.fieldNames().forEachRemaining(known::add);
            }
            throw new DataException(key + ": unknown dataset '" + name + "' (" + (info != null ? "no entry in "
                    + infoFile : Files.isDirectory(datasetDir) ? "no " + INFO_FILE + " in " + datasetDir
                    : "dataset_dir " + datasetDir + " is no folder") + ", and no such file)"
                    + (info != null ? "; known: " + (known.isEmpty() ? "(none)" : String.join(", ", known)) : ""));
        }
        return specs;
    }

    private static DatasetSpec fromInfo(String name, JsonNode entry, Path datasetDir, Path infoFile)
            throws DataException {
        String where = infoFile + ": " + name;
        if (!entry.isObject()) {
            throw new DataException(where + ": an entry must be an object with 'file_name', not " + entry);
        }
        for (Map.Entry<String, JsonNode> field : entry.properties()) {
            if (REMOTE_KEYS.contains(field.getKey())) {
                // LLaMA-Factory prefers these to file_name
                throw new DataException(where + ": '" + field.getKey() + "': only local datasets are supported;"
                        + " give the entry 'file_name' alone");
            }
            if (!ENTRY_KEYS.contains(field.getKey())) {
                throw new DataException(where + ": unknown key '" + field.getKey() + "'; known: "
                        + String.join(", ", ENTRY_KEYS));
            }
        }
        for (String key : List.of("file_name", "formatting", "split", "subset", "folder")) {
            if (entry.has(key) && !entry.get(key).isTextual()) {
                throw new DataException(where + ": '" + key + "' must be a string, not " + entry.get(key));
            }
        }
        if (entry.has("ranking") && !entry.get("ranking").isBoolean()) {
            throw new DataException(where + ": 'ranking' must be true or false, not " + entry.get("ranking"));
        }
        if (!entry.has("file_name")) {
            throw new DataException(where + ": only local datasets are supported; expected 'file_name'");
        }
        if (entry.path("ranking").asBoolean(false)) {
            throw new DataException(where + ": ranking: true marks " + DatasetColumns.untrainable("chosen"));
        }
        String formatting = entry.path("formatting").asText("alpaca");
        DatasetSpec.Formatting format = switch (formatting) {
            case "alpaca" -> DatasetSpec.Formatting.ALPACA;
            case "sharegpt" -> DatasetSpec.Formatting.SHAREGPT;
            default -> throw new DataException(where + ": formatting '" + formatting
                    + "' is not supported; expected alpaca or sharegpt");
        };
        String split = entry.path("split").asText("train");
        if (!"train".equals(split)) {
            throw new DataException(where + ": split '" + split + "': a local file has only the split 'train'");
        }
        int numSamples = 0;
        if (entry.has("num_samples")) {
            numSamples = entry.get("num_samples").asInt(0);
            if (!entry.get("num_samples").canConvertToInt() || numSamples < 1) {
                throw new DataException(where + ": num_samples must be a positive whole number, not "
                        + entry.get("num_samples"));
            }
        }
        Path location = datasetDir.resolve(entry.get("file_name").asText());
        if (!Files.exists(location)) {
            throw new DataException(where + ": file " + location + " not found");
        }
        DatasetColumns columns = DatasetColumns.of(where, entry.get("columns"), entry.get("tags"));
        columns.refuseUntrainable(where);
        if (format == DatasetSpec.Formatting.SHAREGPT) {
            columns.requireSharegpt(where);
        }
        List<Path> files = files(location);
        if (extension(files.get(0)).equals("txt")
                && (format != DatasetSpec.Formatting.ALPACA || !"text".equals(columns.get("prompt")))) {
            throw new DataException(where + ": a .txt file has one column, 'text' (one record a line); give the entry"
                    + " \"columns\": {\"prompt\": \"text\"} and alpaca formatting, as LLaMA-Factory's wiki_demo does");
        }
        // an entry's columns replace every default, so the columns mapped are exactly those it names
        return new DatasetSpec(name, files, format, columns, numSamples,
                entry.has("columns") ? columns.columnFields() : Set.of());
    }

    private static DatasetSpec direct(String name, Path location) throws DataException {
        List<Path> files = files(location);
        DatasetSpec.Formatting format = DatasetSpec.Formatting.ALPACA;
        DatasetColumns columns = DatasetColumns.DIRECT;
        JsonNode first = firstRecord(files.get(0));
        for (String key : List.of("images", "videos", "audios", "chosen", "rejected")) {
            JsonNode value = first == null ? null : first.get(key);
            if (value != null && !value.isNull() && !(value.isContainerNode() && value.isEmpty())) {
                throw new DataException(files.get(0) + ": column '" + key + "': " + DatasetColumns.untrainable(key));
            }
        }
        if (first != null && first.has("messages")) {
            format = DatasetSpec.Formatting.SHAREGPT;
            columns = columns.with("messages", "messages").with("role_tag", "role").with("content_tag", "content")
                    .with("user_tag", "user").with("assistant_tag", "assistant").with("observation_tag", "tool")
                    .with("tools", "tools");
        } else if (first != null && first.has("conversations")) {
            format = DatasetSpec.Formatting.SHAREGPT;
            columns = columns.with("tools", "tools");
        } else if (first != null && first.has("text") && !first.has("instruction")) {
            columns = columns.with("prompt", "text");
        }
        return new DatasetSpec(name, files, format, columns, 0, Set.of());
    }

    private static JsonNode firstRecord(Path file) throws DataException {
        try (RecordReader reader = RecordReader.open(file)) {
            SourceRecord record = reader.next();
            return record == null ? null : record.node();
        } catch (IOException e) {
            throw new DataException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** The file itself, or the files of a folder sorted by name (LLaMA-Factory requires one type). */
    private static List<Path> files(Path location) throws DataException {
        if (Files.isRegularFile(location)) {
            return List.of(location);
        }
        try (Stream<Path> list = Files.list(location)) {
            List<Path> files = list.filter(Files::isRegularFile).sorted().toList();
            if (files.isEmpty()) {
                throw new DataException(location + ": folder holds no data files");
            }
            String ext = extension(files.get(0));
            for (Path file : files) {
                if (!extension(file).equals(ext)) {
                    throw new DataException(location + ": mixed file types (" + files.get(0).getFileName() + ", "
                            + file.getFileName() + "); a dataset folder must hold one type");
                }
            }
            return files;
        } catch (IOException e) {
            throw new DataException(location + ": cannot list: " + e.getMessage(), e);
        }
    }

    private static String extension(Path file) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        int dot = name.lastIndexOf('.');
        return dot < 0 ? "" : name.substring(dot + 1).replace("jsonl", "json");
    }
}
