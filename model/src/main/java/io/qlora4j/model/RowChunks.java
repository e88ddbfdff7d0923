package io.qlora4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.safetensors.SafetensorsReader;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Copies a matrix of a checkpoint to the device a chunk of rows at a time through one reused direct
 * buffer, so that neither a float array nor a buffer of the whole matrix ever exists: the loader's
 * float32 matrices and {@link Float16Weight}'s float16 rows differ only in how a chunk is encoded.
 */
public final class RowChunks {
    private RowChunks() {}

    /** Copies float32 rows as they are: the encoder of a float32 upload. */
    public static final Encoder FLOAT32 = (values, firstRow, rows, cols, staging) -> {
        staging.asFloatBuffer().put(values, 0, rows * cols);
        return true;
    };

    /** Encodes rows of float32 values into the staging buffer in the target dtype. */
    @FunctionalInterface
    public interface Encoder {
        /**
         * Writes {@code rows} rows of {@code cols} {@code values} (rows {@code firstRow ..} of the matrix) to
         * {@code staging} (native order, from position 0, which the encoder leaves where it is); false gives up.
         */
        boolean encode(float[] values, long firstRow, int rows, int cols, ByteBuffer staging);
    }

    /**
     * The 2-D tensor {@code name} as an array of {@code type} in {@code arrays}, about {@code chunkElements}
     * elements at a time (at least one row); null, with nothing left in {@code arrays}, when the encoder gives up.
     */
    public static NDArray upload(SafetensorsReader reader, String name, NDManager arrays, DataType type,
            int chunkElements, Encoder encoder) throws ModelException {
        long[] shape = reader.info(name).shape();
        if (shape.length != 2) {
            throw new IllegalArgumentException(name + " must be a matrix, got " + shape.length + " dimensions");
        }
        int cols = Math.toIntExact(shape[1]);
        int chunkRows = (int) Math.min(shape[0], Math.max(1, chunkElements / Math.max(1, cols)));
        float[] values = new float[chunkRows * cols];
        // One staging buffer for every chunk: on the CPU an array created from a direct buffer shares its
        // memory, so a fresh buffer per chunk would leave a whole tensor of dead direct memory until a GC.
        ByteBuffer staging = ByteBuffer.allocateDirect(values.length * type.getNumOfBytes())
                .order(ByteOrder.nativeOrder());
        NDArray out = arrays.zeros(new Shape(shape), type);
        for (long row = 0; row < shape[0]; row += chunkRows) {
            int count = (int) Math.min(chunkRows, shape[0] - row);
            reader.readFloats(name, row * cols, values, 0, count * cols);
            staging.clear();
            if (!encoder.encode(values, row, count, cols, staging)) {
                out.close();
                return null;
            }
            staging.limit(count * cols * type.getNumOfBytes());
            try (NDArray part = arrays.create(staging, new Shape(count, cols), type)) {
                out.set(new NDIndex("{}:{}", row, row + count), part);
            }
        }
        return out;
    }
}
