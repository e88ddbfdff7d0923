package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.trainer.TinyModel;
import io.qlora4j.trainer.TinyTasks;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InspectCommandTest {
    /** LLaMA-65B's config.json, the only file inspect needs. */
    private static final String LLAMA_65B = "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 8192,"
            + " \"intermediate_size\": 22016, \"max_position_embeddings\": 2048, \"model_type\": \"llama\","
            + " \"num_attention_heads\": 64, \"num_hidden_layers\": 80, \"rms_norm_eps\": 1e-05,"
            + " \"torch_dtype\": \"float16\", \"vocab_size\": 32000}";
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private final CliRun cli = new CliRun();

    private Path llama65b() throws Exception {
        Path model = Files.createDirectories(dir.resolve("llama-65b"));
        Files.writeString(model.resolve("config.json"), LLAMA_65B);
        return model;
    }

    private JsonNode lastJsonLine() throws Exception {
        List<String> lines = cli.out().strip().lines().toList();
        return JSON.readTree(lines.get(lines.size() - 1));
    }

    @Test
    void guanaco65bFromAConfigOnlyDirectoryPlansBelow48GbAndItsPartsSumToTheTotals() throws Exception {
        Path model = llama65b();
        Path guanaco = Path.of("..", "configs", "guanaco-65b.yaml").toAbsolutePath().normalize();
        assertEquals(0, cli.run("inspect", guanaco.toString(), "model_name_or_path=" + model, "device=cuda",
                "device_memory_gb=48", "--json"), cli.err());
        JsonNode plan = lastJsonLine();
        assertTrue(plan.get("fits").asBoolean(), cli.out());
        assertTrue(plan.get("device_bytes").asLong() < 48_000_000_000L, cli.out());
        assertEquals(48_000_000_000L - plan.get("device_bytes").asLong(), plan.get("margin_bytes").asLong());
        long device = 0;
        long host = 0;
        for (Iterator<Map.Entry<String, JsonNode>> it = plan.get("parts").fields(); it.hasNext();) {
            JsonNode part = it.next().getValue();
            if (part.get("where").asText().equals("device")) {
                device += part.get("bytes").asLong();
            } else {
                host += part.get("bytes").asLong();
            }
        }
        assertEquals(plan.get("device_bytes").asLong(), device);
        assertEquals(plan.get("host_bytes").asLong(), host);
        assertTrue(cli.out().contains("fits: device memory"), cli.out());
    }

    @Test
    void trainStartsWithThePlanInspectPrintsForTheSameKeys() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 7);
        Path data = TinyTasks.write(dir.resolve("copy.json"), "copy", 4, 2);
        // packing set: rows of cutoff_len - 1 = 1023 tokens, while this data's rows are about ten tokens (a plan of the
        // longest example keeps 2 layers x 2 x 4 heads x 1023^2 float32 scores fewer, 67 MB); use_cpu over device=cuda
        // computes on the CPU
        String[] keys = {"model_name_or_path=" + base, "dataset=" + data, "output_dir=" + dir.resolve("out"),
            "quantization_bit=4", "lora_rank=4", "packing=true", "cutoff_len=1024", "per_device_train_batch_size=2",
            "gradient_checkpointing=false", "optim=paged_adamw_32bit", "use_cpu=true", "device=cuda", "max_steps=1"};
        assertEquals(0, cli.run(Stream.concat(Stream.of("inspect", "--json"), Stream.of(keys)).toArray(String[]::new)),
                cli.err());
        assertEquals("cpu", lastJsonLine().get("device").asText(), cli.out());
        String inspected = cli.out().lines().filter(l -> l.startsWith("fits: ")).findFirst().orElseThrow();
        assertEquals(0, cli.run(Stream.concat(Stream.of("train"), Stream.of(keys)).toArray(String[]::new)), cli.err());
        assertEquals(List.of("memory plan: " + inspected),
                cli.out().lines().filter(l -> l.startsWith("memory plan: ")).toList(), cli.out());
    }

    @Test
    void withoutAPagedBudgetTheStateSpillsToPinnedHostMemory() throws Exception {
        Path model = llama65b();
        assertEquals(0, cli.run("inspect", "model_name_or_path=" + model.resolve("config.json"), "quantization_bit=4",
                "lora_rank=64", "optim=paged_adamw_32bit", "paged_budget_mb=0", "cutoff_len=528", "fp16=true",
                "device=cuda", "device_memory_gb=48", "--json"), cli.err());
        JsonNode parts = lastJsonLine().get("parts");
        // one 1 MiB page stays on the device (the least a paged store holds); the rest of 8 x 799,539,200 bytes moves
        assertEquals(1 << 20, parts.get("optimizer_device").get("bytes").asLong());
        assertEquals(8 * 799_539_200L - (1 << 20), parts.get("optimizer_host").get("bytes").asLong());
        // the lines say what stays, why, and what spills where
        assertTrue(cli.out().contains("6,396,313,600 bytes, 1,048,576 of them on the device; paged_budget_mb 0, raised to"
                + " one 1 MiB page"), cli.out());
        assertTrue(cli.out().contains("6,395,265,024 bytes of state beyond the device budget, in pinned host memory"),
                cli.out());
    }

    @Test
    void aBatchBeyondSixtyFourBitsIsOneLineNotANegativeSize() throws Exception {
        Path model = llama65b();
        assertEquals(1, cli.run("inspect", "model_name_or_path=" + model, "per_device_train_batch_size=2000000000",
                "cutoff_len=2000000000"));
        assertTrue(cli.err().contains("per_device_train_batch_size x cutoff_len"), cli.err());
        assertEquals(1, cli.err().strip().lines().count(), cli.err());
        assertFalse(cli.out().matches("(?s).* -\\d.*"), cli.out());
    }

    @Test
    void trainWarnsBeforeARunThatWillNotFit() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 5);
        Path data = TinyTasks.write(dir.resolve("copy.json"), "copy", 4, 2);
        assertEquals(0, cli.run("train", "model_name_or_path=" + base, "dataset=" + data, "output_dir="
                + dir.resolve("out"), "max_steps=1", "device=cpu", "device_memory_gb=0.01"), cli.err());
        assertTrue(cli.out().contains("memory plan: does not fit"), cli.out());
        assertTrue(cli.out().contains("warning: this run is planned to exceed"), cli.out());
    }
}
