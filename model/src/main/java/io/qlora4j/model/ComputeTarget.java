package io.qlora4j.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.types.DataType;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * Where and in which floating-point type qlora4j computes: the one place that decides it. CPU
 * always computes in float32: a float16 matmul is no faster there (measured on a Xeon with AVX-512
 * FP16: as fast as float32, docs/BENCHMARKS.md) and less precise. CUDA computes
 * in float32 (TF32 matmuls when {@code TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1}, which the launcher
 * exports) or float16. bfloat16 is not offered: DJL 0.36's PyTorch engine has no bfloat16 arrays
 * (converting an array to {@code DataType.BFLOAT16} aborts the process in its native code), so
 * {@code bf16: true} maps to float32 with one warning.
 *
 * @param device the compute device
 * @param dataType float32 or float16
 */
public record ComputeTarget(Device device, DataType dataType) {

    /** float32 on the CPU: what tests and laptops use. */
    public static final ComputeTarget CPU = new ComputeTarget(Device.cpu(), DataType.FLOAT32);

    /** Checks the pairing: float16 only on a GPU, nothing but float32 and float16. */
    public ComputeTarget {
        if (dataType != DataType.FLOAT32 && dataType != DataType.FLOAT16) {
            throw new IllegalArgumentException("compute dtype must be float32 or float16, not " + dataType);
        }
        if (dataType == DataType.FLOAT16 && !device.isGpu()) {
            throw new IllegalArgumentException("float16 compute needs a CUDA device, not " + device);
        }
    }

    /**
     * Resolves a job's {@code device}, {@code bf16} and {@code fp16} settings.
     *
     * @param device {@code auto} (CUDA when the engine sees a GPU), {@code cpu} or {@code cuda}
     * @param bf16 LLaMA-Factory's bf16 flag: float32 here, with a warning explaining why
     * @param fp16 float16 compute on CUDA; on CPU float32 with a warning
     * @param warn receives each warning line
     * @throws ModelException for an unknown device name, {@code cuda} without a visible GPU, or both flags
     */
    public static ComputeTarget resolve(String device, boolean bf16, boolean fp16, Consumer<String> warn)
            throws ModelException {
        int gpus = Engine.getEngine("PyTorch").getGpuCount();
        Device chosen = switch (device == null ? "auto" : device.toLowerCase(Locale.ROOT)) {
            case "auto" -> gpus > 0 ? Device.gpu() : Device.cpu();
            case "cpu" -> Device.cpu();
            case "cuda", "gpu" -> {
                if (gpus == 0) {
                    throw new ModelException("device: cuda requested but the PyTorch engine sees no GPU "
                            + "(CPU libtorch loaded? see the CUDA section of README.md)");
                }
                yield Device.gpu();
            }
            default -> throw new ModelException("device: '" + device + "' is not allowed (allowed: auto, cpu, cuda)");
        };
        if (bf16 && fp16) {
            throw new ModelException("bf16 and fp16 are both true: choose one");
        }
        if (bf16) {
            warn.accept("bf16: DJL 0.36's PyTorch engine cannot create bfloat16 arrays; computing in float32"
                    + (chosen.isGpu() ? " (TF32 matmuls); set fp16: true for 16-bit compute" : " instead"));
        }
        if (fp16 && !chosen.isGpu()) {
            warn.accept("fp16: float16 matmuls on a CPU are no faster than float32; computing in float32");
        }
        DataType type = fp16 && chosen.isGpu() ? DataType.FLOAT16 : DataType.FLOAT32;
        return new ComputeTarget(chosen, type);
    }
}
