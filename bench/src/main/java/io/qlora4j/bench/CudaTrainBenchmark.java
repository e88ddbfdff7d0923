package io.qlora4j.bench;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.util.cuda.CudaUtils;
import io.qlora4j.adapters.LoraAdapters;
import io.qlora4j.adapters.LoraSettings;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.llama.LlamaFamily;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.optim.LossScaler;
import java.nio.file.Path;
import io.qlora4j.trainer.plan.RecomputePolicy;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Issue 4's GPU measurement: a Llama-2-7B-shaped checkpoint of random bf16 weights written on the machine itself
 * (an air-gapped GPU node gets no download), loaded NF4+DQ onto the device, LoRA r=64 on every linear layer,
 * batch 1 x 512 with recompute, AdamW; one warm-up and {@code steps} measured steps in float32 (TF32 where libtorch
 * enables it) and in float16 with a loss scale. Prints tokens/s, GFLOP/s against the matmul peak of the same dtype
 * measured in the same JVM, and the device memory in use at its highest ({@code cudaMemGetInfo} every 10 ms, the
 * CUDA context included) or, on a CPU, the peak RSS. On a CPU, {@code small} runs the same code on a ~20M shape.
 *
 * <pre>java ... io.qlora4j.bench.CudaTrainBenchmark [7b|small] [steps]</pre>
 */
public final class CudaTrainBenchmark {
    private static final int RANK = 64;
    private static final int SEQ = 512;

    private CudaTrainBenchmark() {}

    /** Llama-2-7B's shape: hidden 4096, intermediate 11008, 32 layers, 32 heads, vocab 32000. */
    static DecoderConfig llama2SevenB() {
        return LlamaFamily.builder(4096, 11008, 32, 32, 32000).optTorchDtype("bfloat16").build();
    }

    /** Writes the checkpoint once, then measures float32 and (on a GPU) float16. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        DecoderConfig config = args.length > 0 && args[0].equals("small") ? BenchModels.small() : llama2SevenB();
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        Device device = Engine.getEngine("PyTorch").getGpuCount() > 0 ? Device.gpu() : Device.cpu();
        System.out.println("CudaTrainBenchmark: " + BenchModels.describe(config) + ", NF4+DQ, LoRA r=" + RANK
                + " on all linear layers, batch 1 x " + SEQ + ", recompute, AdamW; 1 warm-up + " + steps + " steps on "
                + device);
        System.out.println(Machine.describe());
        long start = System.nanoTime();
        try (RandomCheckpoint checkpoint = RandomCheckpoint.write(config, DType.BF16, 7)) {
            System.out.printf(Locale.ROOT, "random bf16 checkpoint written in %.1f s%n", (System.nanoTime() - start) / 1e9);
            for (DataType type : device.isGpu() ? List.of(DataType.FLOAT32, DataType.FLOAT16) : List.of(DataType.FLOAT32)) {
                measure(checkpoint.dir(), config, device, type, steps);
            }
        }
    }

    private static void measure(Path dir, DecoderConfig config, Device device, DataType type, int steps) throws Exception {
        Workload workload = new Workload("run", config, 1, SEQ);
        DeviceMemory memory = new DeviceMemory(device);
        memory.start();
        try (NDManager manager = NDManager.newBaseManager(device, "PyTorch")) {
            long loadStart = System.nanoTime();
            CausalLM model = ModelLoader.builder().optFormat(BaseFormats.QLORA)
                    .optComputeType(type).build().load(dir, manager);
            double loadS = (System.nanoTime() - loadStart) / 1e9;
            long afterLoad = memory.now();
            LoraAdapters lora = LoraAdapters.attach(model, LoraSettings.defaults(RANK), manager, 1);
            LossScaler scaler = type == DataType.FLOAT16 ? new LossScaler() : null;
            double stepMs = TrainBenchmark.medianStepMs(model, lora, TrainBenchmark.randomBatch(config.vocabSize(), 1,
                    SEQ), RecomputePolicy.BLOCK, 1, steps, scaler);
            memory.interrupt();
            memory.join();
            double gflops = workload.flops().training(true) / (stepMs * 1e6);
            double peak = MatmulPeak.medianGflops(manager, type, 3);
            System.out.printf(Locale.ROOT, "%s: load %.1f s (model %.0f MB); step %.0f ms, %.0f tokens/s, %.1f GFLOP/s ="
                    + " %.2f of the %s matmul peak (%.1f GFLOP/s); %s %.0f MB after load, %.0f MB at most%s%n",
                    type, loadS, model.bytes() / 1e6, stepMs, SEQ / (stepMs / 1e3), gflops, gflops / peak, type, peak,
                    device.isGpu() ? "device memory in use" : "RSS", afterLoad / 1e6, memory.peak() / 1e6,
                    scaler == null ? "" : String.format(Locale.ROOT, "; loss scale %.0f", scaler.scale()));
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
            long used = device.isGpu() ? CudaUtils.getGpuMemory(device).getCommitted() : ChildJvm.procStatus("VmRSS");
            peak.accumulateAndGet(used, Math::max);
            return used;
        }

        long peak() {
            return device.isGpu() ? peak.get() : Math.max(peak.get(), ChildJvm.procStatus("VmHWM"));
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
