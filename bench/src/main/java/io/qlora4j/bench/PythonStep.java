package io.qlora4j.bench;

import io.qlora4j.model.decoder.DecoderConfig;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The Python stack's LoRA training step as a baseline child process: {@value #SCRIPT} (a resource of this package)
 * under the interpreter {@link #interpreter} names, with PyTorch. Where that interpreter imports transformers and
 * PEFT it trains transformers' Llama with PEFT's LoRA on every projection under the Trainer as LLaMA-Factory sets it
 * up (a float32 base, recompute per decoder layer, AdamW); where it imports only torch, the same computation in plain
 * PyTorch ({@link #stack}). It reports as qlora4j's benchmark children do ({@link ChildProcess}).
 *
 * <p>The child runs as a Python user's process does: without the settings that the {@code qlora4j} launcher exports
 * for its own JVMs (mmap and trim thresholds, huge pages, OpenMP's waiting), and with this JVM's libtorch thread
 * count, or one thread per processor, libtorch's own default on this machine.
 */
final class PythonStep {
    /** The step script, a resource next to this class. */
    static final String SCRIPT = "torch_lora_step.py";

    private PythonStep() {}

    /** The Python interpreter: the system property {@code qlora4j.python}, else {@code QLORA4J_PYTHON}, else python3. */
    static String interpreter() {
        String property = System.getProperty("qlora4j.python");
        if (property != null) {
            return property;
        }
        String env = System.getenv("QLORA4J_PYTHON");
        return env != null ? env : "python3";
    }

    /**
     * Why the baseline cannot run here, in one line naming the interpreter and what it lacks, or null when its
     * interpreter imports torch.
     */
    static String missing() throws InterruptedException {
        String python = interpreter();
        try {
            String failed = fails("import torch");
            return failed == null ? null : "the Python stack's baseline needs PyTorch, and " + python
                    + " cannot import torch (" + failed + "); name an interpreter that can with QLORA4J_PYTHON or"
                    + " -Dqlora4j.python";
        } catch (IOException e) {
            return "the Python stack's baseline needs a Python interpreter with PyTorch, and " + python
                    + " cannot be started (" + e.getMessage() + "); name one with QLORA4J_PYTHON or -Dqlora4j.python";
        }
    }

    /**
     * The stack the baseline trains with: {@code transformers} (transformers' Llama, PEFT's LoRA, the Trainer) where
     * the interpreter imports transformers and peft, else {@code torch} (the same computation in plain PyTorch).
     */
    static String stack() throws IOException, InterruptedException {
        return fails("import transformers, peft") == null ? "transformers" : "torch";
    }

    /** How tables name {@code stack}. */
    static String describe(String stack) {
        return stack.equals("transformers") ? "Python stack: transformers + PEFT, Trainer" : "Python stack: PyTorch";
    }

    /** The last line the interpreter printed running {@code code}, or null when it ran it without error. */
    private static String fails(String code) throws IOException, InterruptedException {
        Process probe = new ProcessBuilder(interpreter(), "-c", code).redirectErrorStream(true).start();
        String output = new String(probe.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (probe.waitFor() == 0) {
            return null;
        }
        return output.isEmpty() ? "no output" : output.substring(output.lastIndexOf('\n') + 1);
    }

    /**
     * Starts {@code warmup} + {@code steps} steps of LoRA {@code rank} (alpha 2 x rank) over a float32 base of
     * {@code w}'s shape, recomputing each layer, with {@code stack} ({@link #stack}) in a fresh Python process, paced
     * ({@link ChildProcess}); its {@code result.} figures: {@code stepUs}, {@code hwm}, {@code peakMflops}, {@code
     * modelBytes}.
     */
    static ChildProcess start(Workload w, String stack, int rank, int warmup, int steps) throws IOException {
        String source;
        try (InputStream in = PythonStep.class.getResourceAsStream(SCRIPT)) {
            if (in == null) {
                throw new IllegalStateException("the bench jar lacks its resource " + SCRIPT);
            }
            source = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        ProcessBuilder builder = new ProcessBuilder(command(source, w, stack, rank, warmup, steps));
        ChildJvm.LAUNCHER_ENVIRONMENT.keySet().forEach(builder.environment()::remove);
        builder.environment().putAll(ChildJvm.PACED_ENVIRONMENT);
        return ChildProcess.start(builder, "the Python step (" + interpreter() + " " + SCRIPT + ")");
    }

    /** The interpreter running {@code source} (given whole with {@code -c}, so no file outlives the run). */
    private static List<String> command(String source, Workload w, String stack, int rank, int warmup, int steps) {
        DecoderConfig c = w.config();
        String threads = System.getProperty("ai.djl.pytorch.num_threads",
                String.valueOf(Runtime.getRuntime().availableProcessors()));
        List<String> command = new ArrayList<>(List.of(interpreter(), "-c", source));
        command.addAll(List.of("--hidden", String.valueOf(c.hiddenSize()), "--intermediate",
                String.valueOf(c.intermediateSize()), "--layers", String.valueOf(c.numHiddenLayers()), "--heads",
                String.valueOf(c.numAttentionHeads()), "--kv-heads", String.valueOf(c.numKeyValueHeads()), "--vocab",
                String.valueOf(c.vocabSize()), "--rope-theta", String.valueOf(c.ropeTheta()), "--rms-eps",
                String.valueOf(c.rmsNormEps()), "--batch", String.valueOf(w.batch()), "--seq", String.valueOf(w.seq()),
                "--rank", String.valueOf(rank), "--alpha", String.valueOf(2 * rank), "--warmup", String.valueOf(warmup),
                "--steps", String.valueOf(steps), "--threads", threads, "--stack", stack));
        return command;
    }
}
