package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.model.ComputeTarget;
import io.qlora4j.model.ModelException;
import io.qlora4j.trainer.config.JobConfig;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code tf32} against the process's TF32 mode, which libtorch reads from the environment once at its start. */
class JobModelsTf32Test {
    private static final ComputeTarget CUDA_FLOAT32 = new ComputeTarget(Device.gpu(), DataType.FLOAT32);
    private static final ComputeTarget CUDA_FLOAT16 = new ComputeTarget(Device.gpu(), DataType.FLOAT16);

    @Test
    void aTf32SettingThatDisagreesWithTheProcessIsRefusedOnCudaFloat32() {
        List<String> warnings = new ArrayList<>();
        assertEquals("tf32: false, but this process multiplies float32 in TF32 (TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1,"
                + " read by libtorch at its start); run with TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=0 (the launcher sets 1"
                + " unless it is set)", assertThrows(ModelException.class,
                        () -> JobModels.checkTf32(false, CUDA_FLOAT32, "1", warnings::add)).getMessage());
        assertEquals("tf32: true, but this process multiplies float32 without TF32"
                + " (TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=unset, read by libtorch at its start); run with"
                + " TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1", assertThrows(ModelException.class,
                        () -> JobModels.checkTf32(true, CUDA_FLOAT32, null, warnings::add)).getMessage());
        assertThrows(ModelException.class, () -> JobModels.checkTf32(true, CUDA_FLOAT32, "0", warnings::add));
        assertEquals(List.of(), warnings);
    }

    @Test
    void agreementAFloat16TargetOrACpuPass() {
        List<String> warnings = new ArrayList<>();
        assertDoesNotThrow(() -> JobModels.checkTf32(true, CUDA_FLOAT32, "1", warnings::add));
        assertDoesNotThrow(() -> JobModels.checkTf32(false, CUDA_FLOAT32, "0", warnings::add));
        assertDoesNotThrow(() -> JobModels.checkTf32(false, CUDA_FLOAT32, null, warnings::add));
        // float16 compute multiplies in float16 whatever the TF32 mode
        assertDoesNotThrow(() -> JobModels.checkTf32(false, CUDA_FLOAT16, "1", warnings::add));
        assertEquals(List.of(), warnings);
        assertDoesNotThrow(() -> JobModels.checkTf32(false, ComputeTarget.CPU, "1", warnings::add));
        assertEquals(List.of(), warnings);
        assertDoesNotThrow(() -> JobModels.checkTf32(true, ComputeTarget.CPU, null, warnings::add));
        assertEquals(List.of("tf32: TensorFloat-32 is a CUDA matmul mode; the CPU computes in float32"), warnings);
    }

    @Test
    void theJobsTargetOnThisCpuWarnsForTf32AndIsNoLongerAnInertKey() throws Exception {
        JobConfig config = JobConfig.of("device=cpu", "tf32=true");
        assertEquals(List.of(), config.inertKeys());
        List<String> warnings = new ArrayList<>();
        assertEquals(ComputeTarget.CPU, JobModels.target(config, warnings::add));
        assertEquals(List.of("tf32: TensorFloat-32 is a CUDA matmul mode; the CPU computes in float32"), warnings);
    }
}
