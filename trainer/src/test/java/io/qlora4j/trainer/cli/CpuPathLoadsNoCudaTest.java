package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.trainer.TinyModel;
import io.qlora4j.trainer.TinyTasks;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CUDA-only code ({@code io.qlora4j.cuda}, {@code org.bytedeco}) is on the classpath but a CPU run never loads it:
 * a paged-optimizer training run in a child JVM that logs every class it loads.
 */
class CpuPathLoadsNoCudaTest {
    @TempDir
    Path dir;

    @Test
    void pagedTrainingOnTheCpuLoadsNoBytedecoClass() throws Exception {
        ClassLoader loader = getClass().getClassLoader();
        // the classes are there to be loaded: a CPU path that touched them would show up below
        assertNotNull(loader.getResource("org/bytedeco/cuda/global/cudart.class"));
        assertNotNull(loader.getResource("io/qlora4j/cuda/PinnedHostPages.class"));
        Path base = TinyModel.write(dir.resolve("base"), 5);
        Path data = TinyTasks.write(dir.resolve("copy.json"), "copy", 4, 2);
        List<String> command = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xlog:class+load=info", "-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"),
                Main.class.getName(), "train", "model_name_or_path=" + base, "dataset=" + data,
                "output_dir=" + dir.resolve("out"), "max_steps=2", "device=cpu", "quantization_bit=4",
                "optim=paged_adamw_32bit", "paged_budget_mb=0.0625", "paged_page_kb=16");
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String log = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(process.waitFor(5, TimeUnit.MINUTES));
        assertEquals(0, process.exitValue(), tail(log));
        assertTrue(log.contains("io.qlora4j.optim.PagedStateStore"), "the paged store ran");
        assertTrue(log.contains("io.qlora4j.optim.DirectHostPages"), "with direct host pages");
        List<String> cuda = log.lines().filter(l -> l.contains("org.bytedeco") || l.contains("io.qlora4j.cuda"))
                .toList();
        assertTrue(cuda.isEmpty(), String.join("\n", cuda));
    }

    private static String tail(String log) throws IOException {
        List<String> lines = log.lines().filter(l -> !l.startsWith("[")).toList();
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
    }
}
