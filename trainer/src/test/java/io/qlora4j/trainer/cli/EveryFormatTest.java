package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.adapters.LoraAdapters;
import io.qlora4j.adapters.LoraSettings;
import io.qlora4j.model.checkpoint.TinyModels;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.Bnb4bitFormat;
import io.qlora4j.model.format.FormatKeys;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.llama.ReferenceLlama;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.QuantType;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Every registered base format through the commands: eval against a float64 reference, quantize, inspect, export. */
class EveryFormatTest {
    /** {@code <s>} and the words of {@link #TEXT}, as the tiny tokenizer gives them. */
    private static final int[] IDS = {1, 5, 9, 3, 11, 40, 41, 7, 8, 23};
    private static final String TEXT = "w5 w9 w3 w11 w40 w41 w7 w8 w23";
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private final CliRun cli = new CliRun();

    /** Every registered format at its defaults, and FP4 without double quantization. */
    static List<BaseFormat> formats() {
        List<BaseFormat> all = new ArrayList<>(BaseFormats.menu());
        all.add(new Bnb4bitFormat(QuantType.FP4, 64, false));
        return all;
    }

    /** The formats qlora4j writes checkpoints in (a family with a checkpoint refusal is tested by its own test). */
    static List<BaseFormat> writtenFormats() {
        return formats().stream().filter(f -> BaseFormats.checkpointRefusal(f) == null).toList();
    }

    static Stream<BaseFormat> formatsAndDense() {
        return Stream.concat(Stream.of(BaseFormats.DENSE), formats().stream());
    }

    private static List<String> keys(BaseFormat format) {
        List<String> keys = new ArrayList<>();
        format.keys().forEach((k, v) -> keys.add(k + "=" + v));
        return keys;
    }

    /** {@code eval --json} of {@link #TEXT} over {@code model} with {@code more} keys: its loss. */
    private double eval(Path model, List<String> more) throws Exception {
        Path txt = dir.resolve("eval.txt");
        Files.writeString(txt, TEXT + "\n");
        List<String> args = new ArrayList<>(List.of("eval", "model_name_or_path=" + model, "dataset=" + txt, "--json"));
        args.addAll(more);
        assertEquals(0, cli.run(args.toArray(String[]::new)), cli.err());
        List<String> lines = cli.out().lines().toList();
        JsonNode result = JSON.readTree(lines.get(lines.size() - 1));
        assertEquals(IDS.length - 1, result.path("tokens").asInt());
        return result.path("loss").asDouble();
    }

    @ParameterizedTest
    @MethodSource("formatsAndDense")
    void evalEqualsAFloat64LlamaOverTheDequantizedWeights(BaseFormat format) throws Exception {
        Path model = sharpModel();
        Map<String, float[]> weights = new HashMap<>();
        try (SafetensorsReader reader = SafetensorsReader.open(model)) {
            for (TensorInfo t : reader.tensors()) {
                boolean linear = t.name().startsWith("model.layers.") && t.shape().length == 2;
                weights.put(t.name(), linear ? format.quantize(reader.floatSource(t.name()), t.shape()).dequantize()
                        : reader.floats(t.name()));
            }
        }
        int[] positions = new int[IDS.length];
        boolean[] real = new boolean[IDS.length];
        for (int i = 0; i < IDS.length; i++) {
            positions[i] = i;
            real[i] = true;
        }
        double[][] logits = new ReferenceLlama(ModelFamilies.read(model.resolve("config.json")), weights)
                .forward(IDS, positions, real);
        double expected = ReferenceLlama.meanCrossEntropy(logits, IDS);
        double tolerance = format.bits() == 8 ? 2e-5 : 1e-4;
        double loss = eval(model, keys(format));
        assertEquals(expected, loss, tolerance * expected, format.describe());
    }

    @ParameterizedTest
    @MethodSource("writtenFormats")
    void quantizeWritesACheckpointThatLoadsAsTheOnTheFlyModelAndInspectReportsIt(BaseFormat format) throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        Path quantized = dir.resolve("quantized");
        List<String> args = new ArrayList<>(List.of("quantize", "model_name_or_path=" + model, "export_dir=" + quantized));
        args.addAll(keys(format));
        assertEquals(0, cli.run(args.toArray(String[]::new)), cli.err());
        assertTrue(cli.out().contains("to " + format.describe() + ":"), cli.out());
        assertEquals(format, BaseFormats.stored(quantized));
        assertEquals(eval(model, keys(format)), eval(quantized, List.of()), 0.0, "the stored model is the on-the-fly one");

        assertEquals(0, cli.run("inspect", "model_name_or_path=" + quantized), cli.err());
        assertTrue(cli.out().contains("stored: linear layers in " + format.describe() + " (quantization_config)"),
                cli.out());
        assertTrue(cli.out().contains("projections in " + format.describe()), cli.out());
    }

    @ParameterizedTest
    @MethodSource("formats")
    void exportMergesIntoTheWeightsTheAdapterWasTrainedOverAndWritesAnyFormat(BaseFormat format) throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        Path adapter = dir.resolve("adapter");
        try (NDManager m = NDManager.newBaseManager();
                CausalLM base = ModelLoader.builder().optFormat(format).build().load(model, m);
                LoraAdapters lora = LoraAdapters.attach(base, LoraSettings.defaults(4), m, 3)) {
            Random random = new Random(5);
            for (Map.Entry<String, NDArray> p : lora.parameters().entrySet()) {
                if (p.getKey().endsWith("lora_B.weight")) {
                    float[] b = new float[Math.toIntExact(p.getValue().size())];
                    for (int i = 0; i < b.length; i++) {
                        b[i] = (float) (random.nextGaussian() * 0.05);
                    }
                    p.getValue().set(FloatBuffer.wrap(b));
                }
            }
            lora.save(adapter, model.toString(), format);
        }
        double trained = eval(model, withAdapter(keys(format), adapter));
        Path merged = dir.resolve("merged");
        assertEquals(0, cli.run("export", "model_name_or_path=" + model, "adapter_name_or_path=" + adapter,
                "export_dir=" + merged, "export_dtype=float32"), cli.err());
        assertTrue(cli.out().contains("merge_base dequantized (" + format.describe() + ")"), cli.out());
        assertEquals(trained, eval(merged, List.of()), 1e-5 * trained, "the merged model computes base + adapter");

        for (BaseFormat out : writtenFormats()) {
            Path requantized = dir.resolve("as-" + out.describe().replaceAll("[^A-Za-z0-9]", ""));
            List<String> args = new ArrayList<>(List.of("export", "model_name_or_path=" + model,
                    "adapter_name_or_path=" + adapter, "export_dir=" + requantized));
            // the output format: export_quantization_method/_bit, with the format's options as they are
            out.keys().forEach((k, v) -> args.add((k.equals(FormatKeys.METHOD) || k.equals(FormatKeys.BITS)
                    ? "export_" + k : k) + "=" + v));
            assertEquals(0, cli.run(args.toArray(String[]::new)), cli.err());
            assertEquals(out, BaseFormats.stored(requantized), out.describe());
            double loss = eval(requantized, List.of());
            assertEquals(trained, loss, 0.05 * trained, out.describe() + " holds the merged model");
        }
    }

    /**
     * The tiny model with every matrix scaled by 4 and every norm by 16 (exact in bfloat16), so that its predictions
     * are far from uniform
     * and each format's rounding moves the loss well beyond the tolerance the test allows.
     */
    private Path sharpModel() throws Exception {
        Path tiny = TinyModels.writeTinyModel(dir.resolve("source"));
        Path sharp = dir.resolve("sharp");
        Files.createDirectories(sharp);
        for (String file : List.of("config.json", "tokenizer.json")) {
            Files.copy(tiny.resolve(file), sharp.resolve(file));
        }
        try (SafetensorsReader reader = SafetensorsReader.open(tiny);
                SafetensorsWriter writer = SafetensorsWriter.builder(sharp).build()) {
            for (TensorInfo t : reader.tensors()) {
                float[] v = reader.floats(t.name());
                for (int i = 0; i < v.length; i++) {
                    v[i] *= t.shape().length == 2 ? 4 : 16;
                }
                writer.addFloats(t.name(), t.dtype(), t.shape(), v);
            }
        }
        return sharp;
    }

    private static List<String> withAdapter(List<String> keys, Path adapter) {
        List<String> all = new ArrayList<>(keys);
        all.add("adapter_name_or_path=" + adapter);
        return all;
    }
}
