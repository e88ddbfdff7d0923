package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * bitsandbytes' 8-bit blockwise state ({@code optim_bits=8}, blocks of 256): the first moment
 * coded with the signed dynamic map, the second with the unsigned one, each block with a float32
 * absmax (see {@link BlockwiseStateCodec}). A page is four arrays, {@code exp_avg} codes, {@code
 * exp_avg_sq} codes (uint8, one per element), then their absmax (float32, one per block); pages
 * hold whole blocks, so paging never changes a block. As in bitsandbytes, an update decodes a
 * page to float32, updates it, and codes it again with the new absmax; fresh state is all codes
 * 0 and absmax 0. The coding runs in Java on the host.
 *
 * <p>The float32 update between decoding and coding is {@link AdamW}'s, torch's formula, shared
 * with the float32 state; bitsandbytes' kernel computes the same moments as {@code m * beta1 +
 * (1 - beta1) * g} rather than torch's lerp (last-bit differences), applies the weight decay after
 * the update instead of before (a difference of {@code lr * weight_decay} times the update), and
 * leaves an element alone when its gradient is not finite (qlora4j's trainer stops the run then).
 *
 * <p>Checkpoint keys {@code <param>.exp_avg.codes} and {@code <param>.exp_avg_sq.codes} (the
 * codes 0..255 as float32 values, shaped like the parameter), then {@code <param>.exp_avg.absmax}
 * and {@code <param>.exp_avg_sq.absmax} ({@code [ceil(n / 256)]}): exactly the stored state, so a
 * resumed run continues bit-identically (decoded float32 moments would not re-code to the same
 * absmax).
 */
final class Blockwise8BitFormat implements PageFormat {

    /** Parameters with fewer elements keep float32 state, as bitsandbytes' {@code min_8bit_size}. */
    static final int MIN_8BIT_SIZE = 4096;

    static final Blockwise8BitFormat INSTANCE = new Blockwise8BitFormat();

    private static final String CODES = ".codes";
    private static final String ABSMAX = ".absmax";
    private static final List<String> SUFFIXES =
            List.of(
                    StateKind.EXP_AVG.key() + CODES,
                    StateKind.EXP_AVG_SQ.key() + CODES,
                    StateKind.EXP_AVG.key() + ABSMAX,
                    StateKind.EXP_AVG_SQ.key() + ABSMAX);

    private Blockwise8BitFormat() {}

    @Override
    public long pageElements(long pageBytes) {
        // per block: 2 x 256 code bytes + 2 float32 absmax
        int block = BlockwiseStateCodec.BLOCK;
        return Math.max(1, pageBytes / (2L * block + 2L * Float.BYTES)) * block;
    }

    @Override
    public long bytes(long elements) {
        long blocks = (elements + BlockwiseStateCodec.BLOCK - 1) / BlockwiseStateCodec.BLOCK;
        return Math.addExact(Math.multiplyExact(elements, 2L), Math.multiplyExact(blocks, 2L * Float.BYTES));
    }

    @Override
    public List<PagePart> parts(int elements) {
        PagePart codes = new PagePart(DataType.UINT8, elements);
        PagePart absmax = new PagePart(DataType.FLOAT32, BlockwiseStateCodec.blocks(elements));
        return List.of(codes, codes, absmax, absmax);
    }

    @Override
    public Moments open(NDArray[] page, NDArray like) {
        int elements = Math.toIntExact(like.size());
        float[] expAvg = new float[elements];
        float[] expAvgSq = new float[elements];
        BlockwiseStateCodec.decode(
                DeviceBytes.read(page[0]), DeviceBytes.read(page[2]).asFloatBuffer(),
                BlockwiseStateCodec.signedTable(), expAvg);
        BlockwiseStateCodec.decode(
                DeviceBytes.read(page[1]), DeviceBytes.read(page[3]).asFloatBuffer(),
                BlockwiseStateCodec.unsignedTable(), expAvgSq);
        NDManager manager = like.getManager();
        return new Moments(
                manager.create(expAvg, like.getShape()), manager.create(expAvgSq, like.getShape()));
    }

    @Override
    public void close(NDArray[] page, Moments working) {
        store(working.expAvg().toFloatArray(), true, page[0], page[2]);
        store(working.expAvgSq().toFloatArray(), false, page[1], page[3]);
    }

    private static void store(float[] values, boolean signed, NDArray codes,
            NDArray absmax) {
        ByteBuffer codeBytes = ByteBuffer.allocateDirect(values.length);
        ByteBuffer absmaxBytes =
                ByteBuffer.allocateDirect(BlockwiseStateCodec.blocks(values.length) * Float.BYTES)
                        .order(ByteOrder.nativeOrder());
        BlockwiseStateCodec.encode(values, signed, codeBytes, absmaxBytes.asFloatBuffer());
        DeviceBytes.write(codes, codeBytes);
        DeviceBytes.write(absmax, absmaxBytes);
    }

    @Override
    public List<String> suffixes() {
        return SUFFIXES;
    }
}
