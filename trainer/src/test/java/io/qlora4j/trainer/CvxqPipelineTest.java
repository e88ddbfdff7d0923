package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.adapters.LoraAdapters;
import io.qlora4j.model.Tokenizer;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.trainer.cli.Main;
import io.qlora4j.trainer.config.JobConfig;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * CVXQ end to end on a 64-wide tiny model: {@code quantize} meets the size target counting every stored byte, the
 * packed model evaluates as its fake-quantized dense export and as an independent float64 Llama over that export,
 * LoRA trains over it and resumes bit-identically, and bad targets are one line.
 */
class CvxqPipelineTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path dir;

    private static Path base;
    private static Path packed;
    private static Path calibration;
    private static Path heldOut;
    private static String quantizeOutput;

    private static String[] run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int rc = Main.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new String[] {String.valueOf(rc), out.toString(), err.toString()};
    }

    private static Path texts(String name, int count, int words, long seed) throws Exception {
        Random random = new Random(seed);
        List<String> vocab = TinyModel.VOCAB.subList(TinyModel.VOCAB.indexOf("copy"), TinyModel.VOCAB.size());
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            StringBuilder text = new StringBuilder();
            for (int w = 0; w < words; w++) {
                text.append(w == 0 ? "" : " ").append(vocab.get(random.nextInt(vocab.size())));
            }
            lines.add(text.toString());
        }
        return Files.write(dir.resolve(name), lines);
    }

    @BeforeAll
    static void quantize() throws Exception {
        base = TinyModel.write(dir.resolve("base"), 17, 64);
        calibration = texts("calibration.txt", 8, 40, 1);
        heldOut = texts("held-out.txt", 1, 30, 2);
        packed = dir.resolve("cvxq");
        String[] r = run("quantize", "model_name_or_path=" + base, "export_dir=" + packed, "quantization_method=cvxq",
                "target_bits=4", "dataset=" + calibration, "cutoff_len=32", "max_samples=8", "cvxq_group_size=64",
                "cvxq_iterations=16");
        assertEquals("0", r[0], r[2]);
        quantizeOutput = r[1];
    }

    @Test
    void storedBytesOfTheProjectionsMeetTheTargetWithinAHundredthOfABit() throws Exception {
        long bytes = 0;
        long parameters = 0;
        try (SafetensorsReader reader = SafetensorsReader.open(packed)) {
            for (TensorInfo t : reader.tensors()) {
                String n = t.name();
                if (n.startsWith("model.layers.") && !n.contains("layernorm")) {
                    bytes += t.byteSize(); // codes, depth, loc, scale, cluster ids and the corrected bias
                }
            }
            for (Map.Entry<String, long[]> e : ModelLoader.expectedShapes(TinyModel.config(64)).entrySet()) {
                if (e.getKey().contains("_proj.weight")) {
                    parameters += e.getValue()[0] * e.getValue()[1];
                }
            }
        }
        double bits = 8.0 * bytes / parameters;
        assertTrue(Math.abs(bits - 4) <= 0.01, bits + " bits per parameter; " + quantizeOutput);
        JsonNode config = JSON.readTree(packed.resolve("config.json").toFile());
        assertEquals("cvxq", config.path("quantization_config").path("quant_method").asText());
        assertTrue(config.path("attention_bias").asBoolean() && config.path("mlp_bias").asBoolean());
        assertTrue(quantizeOutput.contains("quantized 14 projections to CVXQ mixed precision"), quantizeOutput);
    }

    private static double evalLoss(Path model) throws Exception {
        String[] r = run("eval", "model_name_or_path=" + model, "dataset=" + heldOut, "--json");
        assertEquals("0", r[0], r[2]);
        List<String> lines = r[1].lines().toList();
        return JSON.readTree(lines.get(lines.size() - 1)).path("loss").asDouble();
    }

    @Test
    void packedModelEvaluatesAsItsDenseExportAndAsAFloat64LlamaOverIt() throws Exception {
        Path dense = dir.resolve("dense");
        String[] r = run("export", "model_name_or_path=" + packed, "export_dir=" + dense, "export_dtype=float32");
        assertEquals("0", r[0], r[2]);
        JsonNode config = JSON.readTree(dense.resolve("config.json").toFile());
        assertFalse(config.has("quantization_config"));
        double packedLoss = evalLoss(packed);
        double denseLoss = evalLoss(dense);
        assertEquals(denseLoss, packedLoss, 1e-5);
        double baseLoss = evalLoss(base);
        assertTrue(Math.abs(packedLoss - baseLoss) > 1e-6, "the quantized model is not the base");
        try (Tokenizer tokenizer = Tokenizer.load(dense); SafetensorsReader reader = SafetensorsReader.open(dense)) {
            long[] ids = tokenizer.encode(Files.readAllLines(heldOut).get(0));
            assertEquals(new Float64Reference(dense, reader).loss(ids), denseLoss, 1e-4);
        }
    }

    @Test
    void loraOverTheCvxqBaseLoadsAsPeftAndResumesBitIdentically() throws Exception {
        Path data = TinyTasks.write(dir.resolve("copy.json"), "copy", 8, 3);
        Path straight = dir.resolve("straight");
        Path stopped = dir.resolve("stopped");
        assertTrue(train(job(data, straight)).completed());
        assertTrue(train(job(data, stopped)).completed());
        RunDirectory.deleteRecursively(stopped.resolve("checkpoint-4"));
        Files.delete(stopped.resolve("adapter_model.safetensors"));
        List<String> resume = job(data, stopped);
        resume.add("resume_from_checkpoint=" + stopped.resolve("checkpoint-2"));
        TrainingResult resumed = train(resume);
        assertTrue(resumed.completed(), resumed.failure());
        TrainerTest.assertSameTensors(TrainerTest.tensors(straight.resolve("adapter_model.safetensors")),
                TrainerTest.tensors(stopped.resolve("adapter_model.safetensors")));
        JsonNode adapterConfig = JSON.readTree(straight.resolve("adapter_config.json").toFile());
        assertEquals("LORA", adapterConfig.path("peft_type").asText());
        try (NDManager manager = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().build().load(packed, manager);
                LoraAdapters lora = LoraAdapters.load(straight, model, manager)) {
            assertEquals(28, lora.parameters().size(), "A and B of 14 projections");
            boolean trained = false;
            for (Map.Entry<String, ai.djl.ndarray.NDArray> p : lora.parameters().entrySet()) {
                trained |= p.getKey().contains("lora_B") && p.getValue().abs().max().getFloat() > 0;
            }
            assertTrue(trained, "B starts at zero and moved");
        }
    }

    private static List<String> job(Path data, Path output) {
        return new ArrayList<>(List.of("model_name_or_path=" + packed, "dataset=" + data, "output_dir=" + output,
                "lora_rank=4", "learning_rate=0.01", "lr_scheduler_type=constant", "per_device_train_batch_size=4",
                "seed=3", "logging_steps=1", "max_steps=4", "save_steps=2"));
    }

    private static TrainingResult train(List<String> keys) throws Exception {
        return Trainer.train(JobConfig.load(null, keys), new PrintWriter(new StringWriter(), true), false);
    }

    /**
     * The tiny model has 73,728 projection parameters (per layer q 64x64, k and v 32x64, o 64x64, gate and up
     * 128x64, down 64x128) and 4,416 other float32 values (embed_tokens and lm_head 32x64 each, five norms of 64):
     * 17,664 bytes. A 54,400-byte model leaves 8 x 36,736 / 73,728 = 3.98611 bits per projection parameter.
     */
    @Test
    void inspectTurnsATargetSizeIntoBitsAndPlansTheRunOverThatBase() {
        String[] r = run("inspect", "model_name_or_path=" + base, "target_size_gb=0.0000544");
        assertEquals("0", r[0], r[2]);
        assertTrue(r[1].contains("CVXQ target: 3.9861 bits per linear parameter (the most that fits target_size_gb"),
                r[1]);
        assertTrue(r[1].matches("(?s).*stored model 54.40 kB; the run over it: [a-z ]*: process memory .*"), r[1]);
    }

    @Test
    void targetsOutOfRangeAreOneLine() throws Exception {
        String[] r = run("quantize", "model_name_or_path=" + base, "export_dir=" + dir.resolve("x"),
                "quantization_method=cvxq", "target_bits=9", "dataset=" + calibration);
        assertEquals("1", r[0]);
        assertEquals(1, r[2].strip().lines().count(), r[2]);
        assertTrue(r[2].contains("target_bits") && r[2].contains("out of range"), r[2]);
        r = run("quantize", "model_name_or_path=" + base, "export_dir=" + dir.resolve("x"),
                "quantization_method=cvxq", "target_bits=-1", "dataset=" + calibration);
        assertEquals("1", r[0]);
        assertTrue(r[2].contains("out of range"), r[2]);
        r = run("quantize", "model_name_or_path=" + base, "export_dir=" + dir.resolve("x"),
                "quantization_method=cvxq", "target_size_gb=0.00001", "dataset=" + calibration);
        assertEquals("1", r[0]);
        assertEquals(1, r[2].strip().lines().count(), r[2]);
        assertTrue(r[2].contains("smaller than the unquantized parts"), r[2]);
        r = run("train", "model_name_or_path=" + base, "quantization_method=cvxq", "quantization_bit=4",
                "dataset=" + calibration, "output_dir=" + dir.resolve("t"));
        assertEquals("1", r[0]);
        assertTrue(r[2].contains("needs calibration data"), r[2]);
        assertFalse(Files.exists(dir.resolve("x")));
    }
}
