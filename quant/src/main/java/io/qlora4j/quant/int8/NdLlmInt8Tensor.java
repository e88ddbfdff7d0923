package io.qlora4j.quant.int8;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.quant.DeviceWeight;
import io.qlora4j.quant.DirectBuffers;
import io.qlora4j.quant.ScopedResult;
import java.util.Arrays;

/**
 * An {@link LlmInt8Tensor} resident on a DJL device: the int8 codes {@code [out, in]} and the float32 row factors
 * {@code SCB * f32(1/127)} {@code [out, 1]}, about 8 bits per parameter. Dequantized as bitsandbytes' CPU training
 * path does since 0.47 ({@code MatMul8bitFp}: {@code CB.to(dtype).mul_(SCB.unsqueeze(1).mul(1.0 / 127.0))}): the
 * codes times the row factor in float32, rounded once to the compute dtype; bit for bit
 * {@link LlmInt8Tensor#dequantize()} in float32.
 *
 * <p>Any per-output-row int8 format whose weight is {@code code * rowFactor} uploads through
 * {@link #upload(byte[], float[], long[], NDManager)} (EETQ, whose row factor is its float16 scale).
 */
public final class NdLlmInt8Tensor implements DeviceWeight {
    private final NDManager owner;
    private final NDManager arrays;
    private final long[] shape;
    private final NDArray codes;
    private final NDArray rowScales;

    private NdLlmInt8Tensor(byte[] codes, float[] rowScales, long[] shape, NDManager owner) {
        if (shape.length != 2 || codes.length != shape[0] * shape[1] || rowScales.length != shape[0]) {
            throw new IllegalArgumentException(codes.length + " codes and " + rowScales.length
                    + " row factors do not make a weight of shape " + Arrays.toString(shape));
        }
        this.owner = owner;
        this.arrays = owner.newSubManager();
        this.shape = shape.clone();
        this.codes = arrays.create(DirectBuffers.of(codes, codes.length), new Shape(shape), DataType.INT8);
        this.rowScales = arrays.create(rowScales, new Shape(shape[0], 1));
    }

    /** Copies {@code t} to {@code manager}'s device, into a sub-manager freed by {@link #close()} or with {@code manager}. */
    public static NdLlmInt8Tensor upload(LlmInt8Tensor t, NDManager manager) {
        return new NdLlmInt8Tensor(t.codes(), t.rowScales(), t.shape(), manager);
    }

    /**
     * Copies row-major int8 {@code codes} of {@code shape} {@code [out, in]} and one float32 factor per output row to
     * {@code manager}'s device: a weight that dequantizes to {@code code * rowFactor} in float32, rounded once to the
     * compute dtype.
     */
    public static NdLlmInt8Tensor upload(byte[] codes, float[] rowFactors, long[] shape, NDManager manager) {
        return new NdLlmInt8Tensor(codes, rowFactors, shape, manager);
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** {@code codes * rowScale} in float32, then cast to {@code type} (one rounding, as torch's promoted in-place multiply). */
    @Override
    public NDArray dequantize(DataType type) {
        return ScopedResult.compute(owner, () -> {
            NDArray w = codes.toType(DataType.FLOAT32, false).muli(rowScales);
            return type == DataType.FLOAT32 ? w : w.toType(type, false);
        });
    }

    @Override
    public long bytes() {
        return codes.size() + rowScales.size() * 4;
    }

    @Override
    public void close() {
        arrays.close();
    }

    @Override
    public String toString() {
        return "NdLlmInt8Tensor[shape=" + Arrays.toString(shape) + ", " + bytes() + " bytes on " + arrays.getDevice() + "]";
    }
}
