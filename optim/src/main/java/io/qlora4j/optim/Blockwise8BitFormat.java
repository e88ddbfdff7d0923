package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.List;
import java.util.Map;

/**
 * bitsandbytes' 8-bit blockwise state ({@code optim_bits=8}, blocks of 256): the first moment
 * coded with the signed dynamic map, the second with the unsigned one, each block with a float32
 * absmax (see {@link BlockwiseStateCodec}). A page is four arrays, {@code exp_avg} codes, {@code
 * exp_avg_sq} codes (uint8, one per element), then their absmax (float32, one per block); pages
 * hold whole blocks, so paging never changes a block. As in bitsandbytes, an update decodes a
 * page to float32, updates it, and codes it again with the new absmax; fresh state is all codes
 * 0 and absmax 0. The coding runs in Java on the host.
 *
 * <p>Checkpoint keys {@code <param>.exp_avg.codes} and {@code <param>.exp_avg_sq.codes} (the
 * codes 0..255 as float32 values, shaped like the parameter) and {@code <param>.exp_avg.absmax},
 * {@code <param>.exp_avg_sq.absmax} ({@code [ceil(n / 256)]}): exactly the stored state, so a
 * resumed run continues bit-identically (decoded float32 moments would not re-code to the same
 * absmax).
 */
final class Blockwise8BitFormat implements PageFormat {

    /** Parameters with fewer elements keep float32 state, as bitsandbytes' {@code min_8bit_size}. */
    static final int MIN_8BIT_SIZE = 4096;

    static final Blockwise8BitFormat INSTANCE = new Blockwise8BitFormat();

    private static final int BLOCK = BlockwiseStateCodec.BLOCK;
    private static final String CODES = ".codes";
    private static final String ABSMAX = ".absmax";
    private static final List<String> SUFFIXES =
            List.of(
                    StateKind.EXP_AVG.key() + CODES,
                    StateKind.EXP_AVG.key() + ABSMAX,
                    StateKind.EXP_AVG_SQ.key() + CODES,
                    StateKind.EXP_AVG_SQ.key() + ABSMAX);

    private Blockwise8BitFormat() {}

    @Override
    public long pageElements(long pageBytes) {
        // per block: 2 x 256 code bytes + 2 float32 absmax
        return Math.max(1, pageBytes / (2L * BLOCK + 2L * Float.BYTES)) * BLOCK;
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

    @Override
    public void export(String param, Shape shape, StateLayout layout, List<ByteBuffer> pages,
            Map<String, StateTensor> out) {
        int size = Math.toIntExact(layout.size());
        float[][] codes = new float[2][size];
        float[][] absmax = new float[2][BlockwiseStateCodec.blocks(size)];
        for (int page = 0; page < pages.size(); page++) {
            int elements = layout.elements(page);
            List<PagePart> parts = parts(elements);
            int offset = Math.toIntExact(page * layout.pageElements());
            for (int kind = 0; kind < 2; kind++) {
                ByteBuffer pageCodes = PagePart.slice(pages.get(page), parts, kind);
                for (int i = 0; i < elements; i++) {
                    codes[kind][offset + i] = pageCodes.get(i) & 0xFF;
                }
                PagePart.slice(pages.get(page), parts, 2 + kind)
                        .asFloatBuffer()
                        .get(absmax[kind], offset / BLOCK, parts.get(2 + kind).count());
            }
        }
        for (int kind = 0; kind < 2; kind++) {
            out.put(param + "." + SUFFIXES.get(2 * kind), new StateTensor(shape, codes[kind]));
            out.put(
                    param + "." + SUFFIXES.get(2 * kind + 1),
                    new StateTensor(new Shape(absmax[kind].length), absmax[kind]));
        }
    }

    @Override
    public Shape shape(String param, Map<String, StateTensor> tensors) {
        Shape shape = tensors.get(SUFFIXES.get(0)).shape();
        Shape blocks = new Shape(BlockwiseStateCodec.blocks(Math.toIntExact(shape.size())));
        for (int i = 0; i < SUFFIXES.size(); i++) {
            Shape expected = i % 2 == 0 ? shape : blocks;
            StateTensor tensor = tensors.get(SUFFIXES.get(i));
            String key = param + "." + SUFFIXES.get(i);
            if (!tensor.shape().equals(expected)) {
                throw new IllegalArgumentException(
                        "optimizer state '" + key + "' has shape " + tensor.shape()
                                + ", expected " + expected);
            }
            if (i % 2 == 0) {
                checkCodes(key, tensor.values());
            }
        }
        return shape;
    }

    private static void checkCodes(String key, float[] values) {
        for (int i = 0; i < values.length; i++) {
            float code = values[i];
            if (!(code >= 0 && code <= 255 && code == Math.rint(code))) {
                throw new IllegalArgumentException(
                        "optimizer state '" + key + "' holds " + code + " at element " + i
                                + "; 8-bit codes are whole numbers 0..255");
            }
        }
    }

    @Override
    public List<ByteBuffer> pages(String param, Map<String, StateTensor> tensors,
            StateLayout layout) {
        ByteBuffer[] pages = new ByteBuffer[layout.pages()];
        for (int page = 0; page < pages.length; page++) {
            int elements = layout.elements(page);
            List<PagePart> parts = parts(elements);
            int offset = Math.toIntExact(page * layout.pageElements());
            ByteBuffer bytes =
                    ByteBuffer.allocateDirect(Math.toIntExact(PagePart.bytes(parts)))
                            .order(ByteOrder.nativeOrder());
            for (int kind = 0; kind < 2; kind++) {
                ByteBuffer pageCodes = PagePart.slice(bytes, parts, kind);
                float[] codes = tensors.get(SUFFIXES.get(2 * kind)).values();
                for (int i = 0; i < elements; i++) {
                    pageCodes.put(i, (byte) codes[offset + i]);
                }
                FloatBuffer pageAbsmax = PagePart.slice(bytes, parts, 2 + kind).asFloatBuffer();
                pageAbsmax.put(
                        tensors.get(SUFFIXES.get(2 * kind + 1)).values(), offset / BLOCK,
                        parts.get(2 + kind).count());
            }
            pages[page] = bytes;
        }
        return List.of(pages);
    }
}
