package io.qlora4j.trainer.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JobConfigTest {
    @TempDir
    Path dir;

    private Path yaml(String text) throws IOException {
        Path p = dir.resolve("job.yaml");
        Files.writeString(p, text);
        return p;
    }

    @Test
    void defaultsFollowLlamaFactory() throws Exception {
        JobConfig c = JobConfig.of();
        assertEquals(8, c.integer("lora_rank"));
        assertEquals(0.0, c.number("lora_dropout"));
        assertEquals("all", c.string("lora_target"));
        assertEquals(2048, c.integer("cutoff_len"));
        assertEquals(1.0, c.number("max_grad_norm"));
        assertEquals(42, c.integer("seed"));
        assertEquals("nf4", c.string("quantization_type"));
        assertTrue(c.bool("double_quantization"));
        assertNull(c.integer("quantization_bit"));
        assertFalse(c.isSet("lora_rank"));
    }

    @Test
    void overridesAfterTheFileWin() throws Exception {
        Path p = yaml("lora_rank: 16\nlearning_rate: 2.0e-4\nlora_target: [q_proj, v_proj]\n");
        JobConfig c = JobConfig.load(p, List.of("lora_rank=64"));
        assertEquals(64, c.integer("lora_rank"));
        assertEquals(2.0e-4, c.number("learning_rate"));
        assertEquals("q_proj,v_proj", c.string("lora_target"));
    }

    @Test
    void scientificNotationThatYamlReadsAsTextIsANumber() throws Exception {
        // YAML 1.1 reads 2e-4 (no dot) as a string; LLaMA-Factory files use it all the time.
        assertEquals(2e-4, JobConfig.load(yaml("learning_rate: 2e-4\n"), List.of()).number("learning_rate"));
    }

    @Test
    void axolotlAliasesMapToLlamaFactoryKeys() throws Exception {
        JobConfig c = JobConfig.load(yaml("base_model: /m\nlora_r: 32\nadapter: qlora\nsequence_len: 512\n"
                + "lora_target_linear: true\noptimizer: adamw_torch\nnum_epochs: 2\n"), List.of());
        assertEquals("/m", c.string("model_name_or_path"));
        assertEquals(32, c.integer("lora_rank"));
        assertEquals(4, c.integer("quantization_bit"));
        assertEquals("lora", c.string("finetuning_type"));
        assertEquals(512, c.integer("cutoff_len"));
        assertEquals(2.0, c.number("num_train_epochs"));
    }

    @Test
    void unknownKeySuggestsTheNearestKnownOne() throws Exception {
        Path p = yaml("lora_rnak: 8\n");
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.load(p, List.of()));
        assertEquals(p + ": unknown key 'lora_rnak' (did you mean 'lora_rank'?)", e.getMessage());
    }

    @Test
    void wrongTypeNamesKeyValueAndType() {
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of("lora_rank=eight"));
        assertEquals("command line: lora_rank: 'eight' is not an integer", e.getMessage());
    }

    @Test
    void outOfRangeNamesTheAllowedRange() {
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of("lora_dropout=1.5"));
        assertEquals("command line: lora_dropout: 1.5 is out of range (allowed: 0 to 0.999)", e.getMessage());
    }

    @Test
    void valueOutsideChoicesListsThem() {
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of("quantization_type=int3"));
        assertEquals("command line: quantization_type: 'int3' is not allowed (allowed: nf4, fp4)", e.getMessage());
    }

    @Test
    void plannedValueSaysItIsNotImplementedYet() {
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of("finetuning_type=freeze"));
        assertEquals("command line: finetuning_type: 'freeze' is not implemented yet (available: lora, full)",
                e.getMessage());
    }

    @Test
    void notImplementedKeyIsRefusedOnlyWhenItChangesSomething() throws Exception {
        assertFalse(JobConfig.of("export_legacy_format=false").bool("export_legacy_format"));
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of("export_legacy_format=true"));
        assertTrue(e.getMessage().startsWith("command line: export_legacy_format: not implemented yet"), e.getMessage());
    }

    @Test
    void missingFileAndBadYamlAreOneLine() throws Exception {
        Path missing = dir.resolve("nope.yaml");
        assertEquals(missing + ": no such file",
                assertThrows(ConfigException.class, () -> JobConfig.load(missing, List.of())).getMessage());
        Path bad = yaml("lora_rank: [1, 2\n");
        String msg = assertThrows(ConfigException.class, () -> JobConfig.load(bad, List.of())).getMessage();
        assertTrue(msg.startsWith(bad + ": not valid YAML at line"), msg);
        assertFalse(msg.contains("\n"), msg);
    }

    @Test
    void overrideWithoutEqualsIsRejected() {
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of("lora_rank"));
        assertEquals("command line: 'lora_rank' is not key=value", e.getMessage());
    }

    @Test
    void requireNamesTheMissingKey() {
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of().require("model_name_or_path"));
        assertEquals("missing required key model_name_or_path (Hugging Face model directory), e.g. model_name_or_path=...",
                e.getMessage());
    }

    @Test
    void yamlMappingOrListWhereAScalarIsExpectedIsRefusedByKey() throws Exception {
        Path map = yaml("output_dir: {a: 1}\n");
        assertEquals(map + ": output_dir: expected a string, got a YAML mapping",
                assertThrows(ConfigException.class, () -> JobConfig.load(map, List.of())).getMessage());
        Path list = yaml("output_dir: [a, b]\n");
        assertEquals(list + ": output_dir: expected a string, got a YAML list",
                assertThrows(ConfigException.class, () -> JobConfig.load(list, List.of())).getMessage());
        Path rank = yaml("lora_rank: {r: 8}\n");
        assertEquals(rank + ": lora_rank: expected an integer, got a YAML mapping",
                assertThrows(ConfigException.class, () -> JobConfig.load(rank, List.of())).getMessage());
        Path nested = yaml("dataset: [a, [b]]\n");
        assertEquals(nested + ": dataset: expected a string or a list of strings, got a YAML list holding a list or"
                + " mapping", assertThrows(ConfigException.class, () -> JobConfig.load(nested, List.of())).getMessage());
        assertEquals("a,b", JobConfig.load(yaml("dataset: [a, b]\n"), List.of()).string("dataset"));
    }

    @Test
    void keyGivenTwiceInAFileIsRefusedInsteadOfTheLastWinning() throws Exception {
        Path twice = yaml("lora_rank: 8\nlearning_rate: 1.0e-4\nlora_rank: 16\n");
        String msg = assertThrows(ConfigException.class, () -> JobConfig.load(twice, List.of())).getMessage();
        assertEquals(twice + ": not valid YAML at line 3, column 10: Duplicate field 'lora_rank'", msg);
        Path alias = yaml("lora_r: 8\nlora_rank: 16\n");
        assertEquals(alias + ": lora_rank is given twice with different values (as lora_r and as lora_rank); keep one",
                assertThrows(ConfigException.class, () -> JobConfig.load(alias, List.of())).getMessage());
        // axolotl files say qlora twice over; agreeing spellings are fine, and the command line still overrides
        JobConfig agreeing = JobConfig.load(yaml("adapter: qlora\nload_in_4bit: true\n"), List.of("lora_rank=4"));
        assertEquals(4, agreeing.integer("quantization_bit"));
        assertEquals(8, JobConfig.load(yaml("lora_rank: 16\n"), List.of("lora_rank=4", "lora_rank=8"))
                .integer("lora_rank"));
    }
}
