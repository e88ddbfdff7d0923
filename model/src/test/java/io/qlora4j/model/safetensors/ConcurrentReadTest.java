package io.qlora4j.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.QuantizedTensor;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link SafetensorsReader#readFloats} from several threads at once, as streamed quantization reads. */
class ConcurrentReadTest {
    private static final long[] SHAPE = {307, 2003}; // odd, several 64K-element chunks per thread

    @TempDir
    Path dir;

    @Test
    void quantizingFromTheReaderOnSeveralThreadsGivesTheBytesOfTheWholeArray() throws Exception {
        Random random = new Random(8);
        float[] values = new float[(int) (SHAPE[0] * SHAPE[1])];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextGaussian() * 0.02f;
        }
        DType[] types = {DType.F32, DType.F16, DType.BF16};
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).build()) {
            for (DType t : types) {
                writer.addFloats("w." + t, t, SHAPE, values);
            }
        }
        try (SafetensorsReader reader = SafetensorsReader.open(dir)) {
            for (DType t : types) {
                String name = "w." + t;
                float[] whole = reader.floats(name);
                for (int threads : new int[] {1, 2, 4}) {
                    BlockwiseQuantizer q = BlockwiseQuantizer.builder().optThreads(threads).build();
                    QuantizedTensor streamed = q.quantize((offset, dest, destPos, count)
                            -> reader.readFloats(name, offset, dest, destPos, count), SHAPE);
                    QuantizedTensor expected = q.quantize(whole, SHAPE);
                    assertArrayEquals(expected.packed(), streamed.packed(), name + ", " + threads + " threads");
                    assertEquals(expected, streamed, name + ", " + threads + " threads");
                }
            }
        }
    }
}
