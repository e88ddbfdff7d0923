package io.qlora4j.model.format;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.RowChunks;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.quant.FloatSource;
import java.util.List;
import java.util.Map;

/**
 * Full-precision weights: float32 on the device ({@link DenseLinear}), the checkpoint's own dtype on disk. The
 * format of a job without {@code quantization_bit}; it stores nothing a float checkpoint lacks.
 */
final class DenseFormat implements BaseFormat {
    static final DenseFormat INSTANCE = new DenseFormat();
    /** Elements copied to the device at once. */
    private static final int CHUNK_ELEMENTS = 1 << 22;

    private DenseFormat() {}

    @Override
    public String method() {
        return "none";
    }

    @Override
    public int bits() {
        return 32;
    }

    @Override
    public String describe() {
        return "dense float32";
    }

    @Override
    public Map<String, Object> keys() {
        return Map.of();
    }

    @Override
    public boolean isStored(SafetensorsReader reader, String prefix) {
        return false;
    }

    @Override
    public List<String> storedKeys(SafetensorsReader reader, String prefix) {
        return List.of(prefix + ".weight");
    }

    @Override
    public StoredWeight read(SafetensorsReader reader, String prefix) throws ModelException {
        String name = prefix + ".weight";
        return new Weight(reader.floats(name), reader.info(name).shape());
    }

    @Override
    public StoredWeight quantize(FloatSource<ModelException> source, long[] shape) throws ModelException {
        float[] values = new float[Math.toIntExact(shape[0] * shape[1])];
        source.read(0, values, 0, values.length);
        return new Weight(values, shape.clone());
    }

    /** The weight copied to the device in row chunks, so no float array of it exists. */
    @Override
    public BaseLinear load(SafetensorsReader reader, String prefix, NDArray bias, NDManager manager)
            throws ModelException {
        NDArray w = RowChunks.upload(reader, prefix + ".weight", manager, DataType.FLOAT32, CHUNK_ELEMENTS,
                RowChunks.FLOAT32);
        return new DenseLinear(w, bias);
    }

    @Override
    public ObjectNode quantizationConfig(String torchDtype) {
        return null;
    }

    @Override
    public long storedBytes(long[] shape) {
        return 4 * shape[0] * shape[1];
    }

    @Override
    public String toString() {
        return describe();
    }

    /** Float32 values, row-major. */
    private record Weight(float[] values, long[] shape) implements StoredWeight {
        @Override
        public long[] shape() {
            return shape.clone();
        }

        @Override
        public long bytes() {
            return 4L * values.length;
        }

        @Override
        public float[] dequantize() {
            return values.clone();
        }

        /** The weight in {@code torchDtype} (bfloat16 and float16 rounded to nearest even). */
        @Override
        public void write(SafetensorsWriter writer, String prefix, String torchDtype) throws ModelException {
            DType dtype = switch (torchDtype) {
                case "bfloat16" -> DType.BF16;
                case "float16" -> DType.F16;
                default -> DType.F32;
            };
            writer.addFloats(prefix + ".weight", dtype, shape, values);
        }

        @Override
        public BaseLinear upload(NDArray bias, NDManager manager) {
            return new DenseLinear(manager.create(values, new Shape(shape)), bias);
        }
    }
}
