package io.qlora4j.trainer;

import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.decoder.DecoderConfig;

/**
 * What a QLoRA run of a decoder model of any family needs, from its config and the base format alone: the linear
 * weights in that format (its stored bytes, scales included), the embeddings and lm_head (16 bits for a bf16 or fp16
 * checkpoint, as {@code Float16Weight} holds them), the norms, the LoRA
 * parameters with their gradients and AdamW state, and the activations of one recomputed step.
 *
 * @param parameters all parameters of the base model
 * @param linearParameters the parameters of the quantized linear layers under model.layers
 * @param baseBytes the linears in the base format with their scales
 * @param denseBytes embeddings and lm_head (16 bits plus a row scale, or the compute dtype for a float32
 *     checkpoint) and the norms in the compute dtype
 * @param loraParameters LoRA parameters at the given rank on every linear layer
 * @param loraBytes LoRA weights, gradients and AdamW's two moments, all float32
 * @param activationBytes one saved hidden state per block, one block's transient tensors and the logits
 */
public record QloraMemoryEstimate(long parameters, long linearParameters, long baseBytes, long denseBytes,
        long loraParameters, long loraBytes, long activationBytes) {

    /** The total of every part. */
    public long totalBytes() {
        return baseBytes + denseBytes + loraBytes + activationBytes;
    }

    /**
     * Estimates a run over a base in {@code format} with LoRA of {@code rank} on all linear layers, {@code batch}
     * sequences of {@code seqLen} tokens, gradient checkpointing on, and {@code computeBytes} per dense element
     * (4 for float32, 2 for float16).
     *
     * @throws IllegalArgumentException when the activations alone overflow a 64-bit byte count
     */
    public static QloraMemoryEstimate of(DecoderConfig c, BaseFormat format, int rank, int seqLen, int batch,
            int computeBytes) {
        long h = c.hiddenSize();
        long q = c.queryDim();
        long inter = c.intermediateSize();
        long layers = c.numHiddenLayers();
        long linearParams = 0;
        long packed = 0;
        long lora = 0;
        for (String name : c.linearNames()) {
            long[] inOut = c.inOut(name);
            long[] outIn = {inOut[1], inOut[0]};
            linearParams += outIn[0] * outIn[1];
            packed += format.storedBytes(outIn);
            lora += (long) rank * (outIn[0] + outIn[1]);
        }
        long tables = c.tieWordEmbeddings() ? 1 : 2;
        long embeddings = tables * c.vocabSize() * h;
        boolean sixteenBit = "bfloat16".equals(c.torchDtype()) || "float16".equals(c.torchDtype());
        long tableBytes = sixteenBit ? tables * c.vocabSize() * (2 * h + 4) : embeddings * computeBytes;
        long norms = h;
        for (long[] shape : c.normShapes().values()) {
            norms += layers * shape[0];
        }
        long params = layers * linearParams + embeddings + norms;
        try {
            long tokens = product(seqLen, batch);
            long saved = product(layers, tokens, h, 4);
            long scores = product(batch, c.numAttentionHeads(), seqLen, seqLen, 4 * 3);
            long mlp = product(tokens, inter, 4 * 4);
            long dequantized = Math.max(inter * h, q * h) * 4 * 2;
            long logits = product(tokens, c.vocabSize(), 4 * 2);
            long activations = Math.addExact(Math.addExact(Math.addExact(saved, scores), Math.addExact(mlp, logits)),
                    dequantized);
            long denseBytes = tableBytes + norms * computeBytes;
            Math.addExact(layers * packed + denseBytes + layers * lora * 16, activations); // the total must fit too
            return new QloraMemoryEstimate(params, layers * linearParams, layers * packed, denseBytes, layers * lora,
                    layers * lora * 16, activations);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("a batch of " + batch + " x " + seqLen + " tokens needs more than 2^63"
                    + " bytes of activations; nothing can run it");
        }
    }

    private static long product(long... factors) {
        long p = 1;
        for (long f : factors) {
            p = Math.multiplyExact(p, f);
        }
        return p;
    }
}
