package io.qlora4j.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ComputeTargetTest {
    private final List<String> warnings = new ArrayList<>();

    @Test
    void cpuComputesInFloat32WithoutWarnings() throws Exception {
        assertEquals(ComputeTarget.CPU, ComputeTarget.resolve("cpu", false, false, warnings::add));
        // this machine has no GPU visible to the CPU libtorch: auto resolves to the CPU
        assertEquals(ComputeTarget.CPU, ComputeTarget.resolve("auto", false, false, warnings::add));
        assertTrue(warnings.isEmpty(), warnings.toString());
    }

    @Test
    void bf16MapsToFloat32WithOneWarningNamingTheDjlLimitation() throws Exception {
        ComputeTarget t = ComputeTarget.resolve("cpu", true, false, warnings::add);
        assertEquals(DataType.FLOAT32, t.dataType());
        assertEquals(1, warnings.size());
        assertTrue(warnings.get(0).startsWith("bf16: DJL 0.36's PyTorch engine cannot create bfloat16 arrays"),
                warnings.get(0));
    }

    @Test
    void fp16OnTheCpuFallsBackToFloat32WithAWarning() throws Exception {
        assertEquals(DataType.FLOAT32, ComputeTarget.resolve("cpu", false, true, warnings::add).dataType());
        assertEquals(1, warnings.size());
        assertTrue(warnings.get(0).startsWith("fp16: float16 matmuls on a CPU are no faster than float32"),
                warnings.get(0));
    }

    @Test
    void badCombinationsAreOneLineErrors() {
        assertEquals("device: 'tpu' is not allowed (allowed: auto, cpu, cuda)",
                assertThrows(ModelException.class, () -> ComputeTarget.resolve("tpu", false, false, warnings::add))
                        .getMessage());
        assertTrue(assertThrows(ModelException.class, () -> ComputeTarget.resolve("cuda", false, false, warnings::add))
                .getMessage().startsWith("device: cuda requested but the PyTorch engine sees no GPU"));
        assertEquals("bf16 and fp16 are both true: choose one",
                assertThrows(ModelException.class, () -> ComputeTarget.resolve("cpu", true, true, warnings::add))
                        .getMessage());
        assertThrows(IllegalArgumentException.class, () -> new ComputeTarget(Device.cpu(), DataType.FLOAT16));
    }
}
