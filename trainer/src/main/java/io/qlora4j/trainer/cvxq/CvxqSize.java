package io.qlora4j.trainer.cvxq;

import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelLoader;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Sizes of a CVXQ base from a model's config alone: what {@code quantize target_size_gb=S} turns into a bit budget
 * and what {@code inspect} reports for a CVXQ target (the device bytes the memory planner counts are
 * {@code CvxqFormat.deviceBytes}). The block
 * projections take {@code bits} per parameter as stored (side information and the corrected biases included, the
 * quantity CVXQ meets within 0.01); everything else (embed_tokens, lm_head, norms) stays as the checkpoint stores it.
 */
public final class CvxqSize {
    private CvxqSize() {}

    /** The {@code [out, in]} shapes of one block's projections. */
    private static List<long[]> blockShapes(DecoderConfig c) {
        Map<String, long[]> shapes = ModelLoader.expectedShapes(c);
        return c.linearNames().stream().map(n -> shapes.get("model.layers.0." + n + ".weight")).toList();
    }

    /** Parameters of the block projections. */
    public static long linearParameters(DecoderConfig c) {
        long n = 0;
        for (long[] outIn : blockShapes(c)) {
            n += outIn[0] * outIn[1];
        }
        return n * c.numHiddenLayers();
    }

    /** Bytes per element of the checkpoint's float tensors: 2 for bfloat16 or float16, else 4. */
    private static int elementBytes(DecoderConfig c) {
        return "bfloat16".equals(c.torchDtype()) || "float16".equals(c.torchDtype()) ? 2 : 4;
    }

    /** Bytes of everything but the block projections as stored: embed_tokens, lm_head (unless tied), norms. */
    public static long unquantizedBytes(DecoderConfig c) {
        long tables = (c.tieWordEmbeddings() ? 1L : 2L) * c.vocabSize() * c.hiddenSize();
        long norms = (2L * c.numHiddenLayers() + 1) * c.hiddenSize();
        return (tables + norms) * elementBytes(c);
    }

    /** Stored bytes of the whole CVXQ model at {@code bits} per projection parameter. */
    public static long storedBytes(DecoderConfig c, double bits) {
        return (long) Math.ceil(linearParameters(c) * bits / 8) + unquantizedBytes(c);
    }

    /**
     * The bits per projection parameter whose whole stored model fits in {@code bytes}, at most 8.
     *
     * @throws IllegalArgumentException when {@code bytes} does not even hold the unquantized parts
     */
    public static double bitsFor(DecoderConfig c, double bytes) {
        long fixed = unquantizedBytes(c);
        if (bytes <= fixed) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "target_size_gb=%s is smaller than the"
                    + " unquantized parts of the model (%.6f GB: embed_tokens, lm_head and norms)",
                    bytes / 1e9, fixed / 1e9));
        }
        return Math.min(8, Math.floor(8 * (bytes - fixed) / linearParameters(c) * 1e4) / 1e4);
    }
}
