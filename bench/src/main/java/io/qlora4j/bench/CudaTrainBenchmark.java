package io.qlora4j.bench;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.util.cuda.CudaUtils;
import io.qlora4j.adapters.LoraAdapters;
import io.qlora4j.adapters.LoraSettings;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.llama.LlamaFamily;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.Float16Weight;
import io.qlora4j.model.LibtorchVersion;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.decoder.DecoderBlock;
import io.qlora4j.model.decoder.TransformerBlock;
import io.qlora4j.model.decoder.TransformerLM;
import io.qlora4j.model.format.StoredWeight;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.optim.AdamW;
import io.qlora4j.optim.HostPages;
import io.qlora4j.optim.LossScaler;
import io.qlora4j.optim.Optim;
import io.qlora4j.trainer.cli.ProcessMemory;
import io.qlora4j.trainer.plan.MemoryPlan;
import io.qlora4j.trainer.plan.MemoryPlanner;
import io.qlora4j.trainer.plan.ModelShape;
import io.qlora4j.trainer.plan.RecomputePolicy;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Issue 4's and issue 18's GPU measurement: QLoRA steps of a large model on the device, NF4+DQ, LoRA r=64 on every
 * linear layer, batch 1 x 512 with recompute, in float32 (TF32 where libtorch enables it) and in float16 with a loss
 * scale; one warm-up and {@code steps} measured steps. Prints tokens/s, GFLOP/s against the matmul peak of the same
 * dtype measured in the same JVM, the device memory in use at its highest ({@code cudaMemGetInfo} every 10 ms, the
 * CUDA context included) or, on a CPU, the peak RSS, and the memory planner's figure for the same run beside it.
 *
 * <ul>
 *   <li>{@code 7b}: a Llama-2-7B-shaped checkpoint of random bf16 weights written on the machine itself (an
 *       air-gapped GPU node gets no download), loaded as a job loads it; AdamW with its state on the device.</li>
 *   <li>{@code 65b}: the Guanaco-65B settings (LLaMA-65B shape, r 64, 1 x 512, paged_adamw_32bit with
 *       {@code paged_budget_mb=0}, so the state lives in pinned host memory as it must on a 48 GB card) without a
 *       130 GB checkpoint: a one-layer checkpoint of the same widths (2.6 GB on disk) is written, its projections
 *       quantized once and uploaded 80 times, layer by layer, so the device holds 80 blocks of NF4 weights whose
 *       values repeat (memory and time do not depend on them). The target: peak device memory below 48 GB.</li>
 *   <li>{@code small}: a ~20M shape, to run the same code on a CPU; {@code --replicate} builds it the 65b way,
 *       {@code --paged} pages its optimizer state the 65b way.</li>
 * </ul>
 *
 * <pre>java ... io.qlora4j.bench.CudaTrainBenchmark [7b|65b|small] [steps] [--replicate] [--paged]</pre>
 */
public final class CudaTrainBenchmark {
    private static final int RANK = 64;
    private static final int SEQ = 512;

    private CudaTrainBenchmark() {}

    /** Llama-2-7B's shape: hidden 4096, intermediate 11008, 32 layers, 32 heads, vocab 32000. */
    static DecoderConfig llama2SevenB() {
        return LlamaFamily.builder(4096, 11008, 32, 32, 32000).optTorchDtype("bfloat16").build();
    }

    /** LLaMA-65B's shape as its config.json says: hidden 8192, intermediate 22016, 80 layers, 64 heads, float16. */
    static DecoderConfig llama65B() {
        return LlamaFamily.builder(8192, 22016, 80, 64, 32000).optRmsNormEps(1e-5).optTorchDtype("float16").build();
    }

    /** Writes the checkpoint once, then measures float32 and (on a GPU) float16. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        LibtorchVersion.requireSupported(System.getenv("PYTORCH_LIBRARY_PATH"));
        List<String> flags = List.of(args);
        String shape = args.length > 0 ? args[0] : "7b";
        DecoderConfig config = switch (shape) {
            case "small" -> BenchModels.small();
            case "65b" -> llama65B();
            case "7b" -> llama2SevenB();
            default -> throw new IllegalArgumentException("shape " + shape + ": expected 7b, 65b or small");
        };
        int steps = args.length > 1 && !args[1].startsWith("--") ? Integer.parseInt(args[1]) : 3;
        boolean replicate = shape.equals("65b") || flags.contains("--replicate");
        boolean paged = shape.equals("65b") || flags.contains("--paged");
        Device device = Engine.getEngine("PyTorch").getGpuCount() > 0 ? Device.gpu() : Device.cpu();
        System.out.println("CudaTrainBenchmark: " + BenchModels.describe(config) + ", NF4+DQ, LoRA r=" + RANK
                + " on all linear layers, batch 1 x " + SEQ + ", recompute, " + (paged
                        ? "paged_adamw_32bit with paged_budget_mb=0" : "AdamW") + (replicate
                        ? "; one layer's weights uploaded to every layer" : "") + "; 1 warm-up + " + steps + " steps on "
                + device);
        System.out.println(Machine.describe());
        long start = System.nanoTime();
        DecoderConfig written = replicate ? oneLayer(config) : config;
        try (RandomCheckpoint checkpoint = RandomCheckpoint.write(written, DType.BF16, 7)) {
            System.out.printf(Locale.ROOT, "random bf16 checkpoint (%d layers) written in %.1f s%n",
                    written.numHiddenLayers(), (System.nanoTime() - start) / 1e9);
            for (DataType type : device.isGpu() ? List.of(DataType.FLOAT32, DataType.FLOAT16) : List.of(DataType.FLOAT32)) {
                measure(checkpoint.dir(), config, replicate, paged, device, type, steps);
                if (device.isGpu()) {
                    JniUtils.emptyCudaCache(); // the next dtype's peak starts from the CUDA context, not this run's cache
                }
            }
        }
    }

    /** The Llama config {@code c} with one layer. */
    private static DecoderConfig oneLayer(DecoderConfig c) {
        return LlamaFamily.builder(c.hiddenSize(), c.intermediateSize(), 1, c.numAttentionHeads(), c.vocabSize())
                .optNumKeyValueHeads(c.numKeyValueHeads()).optRmsNormEps(c.rmsNormEps()).optTorchDtype(c.torchDtype())
                .build();
    }

    private static void measure(Path dir, DecoderConfig config, boolean replicate, boolean paged, Device device,
            DataType type, int steps) throws Exception {
        Workload workload = new Workload("run", config, 1, SEQ);
        DeviceMemory memory = new DeviceMemory(device);
        memory.start();
        try (NDManager manager = NDManager.newBaseManager(device, "PyTorch")) {
            long loadStart = System.nanoTime();
            CausalLM model = replicate ? replicated(dir, config, type, manager)
                    : ModelLoader.builder().optFormat(BaseFormats.QLORA).optComputeType(type).build().load(dir, manager);
            double loadS = (System.nanoTime() - loadStart) / 1e9;
            long afterLoad = memory.now();
            LoraSettings settings = LoraSettings.defaults(RANK);
            LoraAdapters lora = LoraAdapters.attach(model, settings, manager, 1);
            LossScaler scaler = type == DataType.FLOAT16 ? new LossScaler() : null;
            AdamW.Builder adam = AdamW.builder();
            if (paged) {
                adam.optOptim(Optim.PAGED_ADAMW_32BIT).optPagedBudget(0)
                        .optHostPages(HostPages.forDevice(device, line -> System.out.println("warning: " + line)));
            }
            double stepMs;
            try (AdamW optimizer = adam.build()) {
                stepMs = TrainBenchmark.medianStepMs(model, lora, TrainBenchmark.randomBatch(config.vocabSize(), 1, SEQ),
                        RecomputePolicy.BLOCK, 0, 1, steps, scaler, optimizer);
            }
            memory.interrupt();
            memory.join();
            MemoryPlan plan = MemoryPlanner.builder(ModelShape.of(config)).optFormat(BaseFormats.QLORA).optRank(RANK)
                    .optDropout(settings.dropout() > 0).optOptim(paged ? Optim.PAGED_ADAMW_32BIT : Optim.ADAMW_TORCH)
                    .optPagedBudget(paged ? 0L : null).optBatch(1).optSeq(SEQ)
                    .optComputeBytes(type == DataType.FLOAT16 ? 2 : 4)
                    .optDevice(device.isGpu() ? MemoryPlanner.Device.CUDA : MemoryPlanner.Device.CPU).build().plan();
            long planned = device.isGpu() ? plan.deviceBytes() : plan.hostBytes();
            double gflops = workload.flops().training(true) / (stepMs * 1e6);
            double peak = MatmulPeak.medianGflops(manager, type, 3);
            System.out.printf(Locale.ROOT, "%s: load %.1f s (model %.0f MB); step %.0f ms, %.0f tokens/s, %.1f GFLOP/s ="
                    + " %.2f of the %s matmul peak (%.1f GFLOP/s); %s %.0f MB after load, %.0f MB at most%s%n",
                    type, loadS, model.bytes() / 1e6, stepMs, SEQ / (stepMs / 1e3), gflops, gflops / peak, type, peak,
                    device.isGpu() ? "device memory in use" : "RSS", afterLoad / 1e6, memory.peak() / 1e6,
                    scaler == null ? "" : String.format(Locale.ROOT, "; loss scale %.0f", scaler.scale()));
            System.out.printf(Locale.ROOT, "%s: planned %s %.0f MB; measured / plan %.3f%n", type,
                    device.isGpu() ? "device memory" : "peak RSS", planned / 1e6, (double) memory.peak() / planned);
        }
    }

    /**
     * The model of {@code config} from the one-layer checkpoint in {@code dir}: its tables and final norm as a job
     * loads them, its projections quantized once and uploaded to every layer (so no checkpoint of the whole model
     * exists anywhere), its norms the identity.
     */
    private static CausalLM replicated(Path dir, DecoderConfig config, DataType type, NDManager manager)
            throws Exception {
        try (SafetensorsReader reader = SafetensorsReader.open(dir)) {
            Map<String, StoredWeight> layer = new LinkedHashMap<>();
            for (String name : config.linearNames()) {
                String weight = "model.layers.0." + name + ".weight";
                layer.put(name, BaseFormats.QLORA.quantize(reader.floatSource(weight), reader.info(weight).shape()));
            }
            List<DecoderBlock> blocks = new ArrayList<>();
            for (int l = 0; l < config.numHiddenLayers(); l++) {
                Map<String, LinearLayer> linears = new LinkedHashMap<>();
                layer.forEach((name, w) -> linears.put(name, w.upload(null, manager)));
                Map<String, NDArray> norms = new LinkedHashMap<>();
                config.normShapes().forEach((name, shape) -> norms.put(name, manager.ones(new Shape(shape))));
                blocks.add(new TransformerBlock(config, l, norms, linears));
            }
            Float16Weight embed = Float16Weight.read(reader, "model.embed_tokens.weight", manager);
            LinearLayer head = config.tieWordEmbeddings() ? null
                    : Float16Weight.read(reader, "lm_head.weight", manager).asLinear();
            return new TransformerLM(config, embed, blocks, manager.ones(new Shape(config.hiddenSize())), head, type);
        }
    }

    /** The device's memory in use (the GPU's, or this process's RSS on a CPU), sampled every 10 ms. */
    private static final class DeviceMemory extends Thread {
        private final Device device;
        private final AtomicLong peak = new AtomicLong();

        DeviceMemory(Device device) {
            this.device = device;
            setDaemon(true);
        }

        long now() {
            long used = device.isGpu() ? CudaUtils.getGpuMemory(device).getCommitted() : ProcessMemory.statusBytes("VmRSS");
            peak.accumulateAndGet(used, Math::max);
            return used;
        }

        long peak() {
            return device.isGpu() ? peak.get() : Math.max(peak.get(), ProcessMemory.statusBytes("VmHWM"));
        }

        @Override
        public void run() {
            while (!isInterrupted()) {
                now();
                try {
                    Thread.sleep(10);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }
    }
}
