package io.qlora4j.trainer.plan;

import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.DecoderParts;
import io.qlora4j.model.decoder.MlpActivation;
import java.util.List;

/**
 * The sizes of a decoder model that memory depends on, read from its config alone (no weights): what the planner
 * needs and nothing else, so that a model family only has to say how its config maps onto these numbers.
 *
 * @param hidden hidden size
 * @param intermediate MLP width
 * @param layers decoder blocks
 * @param heads attention heads
 * @param kvHeads key/value heads
 * @param headDim size of one head
 * @param vocab vocabulary size
 * @param tiedEmbeddings whether lm_head reads the embedding table
 * @param sixteenBitTables whether the checkpoint's embedding and lm_head are bfloat16 or float16, which the loader
 *     keeps in 16 bits ({@code Float16Weight}); float32 checkpoints keep them in the compute dtype
 * @param linears each block's projections, in block order
 * @param normElements norm weight elements per block
 * @param block what the family's block and loss head compute beyond Llama's, as far as activation memory goes
 */
public record ModelShape(long hidden, long intermediate, int layers, long heads, long kvHeads, long headDim, long vocab,
        boolean tiedEmbeddings, boolean sixteenBitTables, List<Linear> linears, long normElements, BlockParts block) {

    /**
     * The parts of a family's block and loss head that change what a training step keeps, each read from the
     * family's {@link DecoderParts} and config (never from its name), so that a family declares them by its config
     * reading and the {@link ActivationModel} counts each the same way for every family. Query/key/value biases add
     * no array (added in place) and Gemma's embedding scale none (the unscaled rows are closed), so neither is here.
     *
     * @param norms hidden-wide RMSNorms per block: 2, or 4 with Gemma 2's norms around the attention and MLP outputs
     * @param normedOutputs o_proj's and down_proj's outputs pass a norm, which keeps them for the backward pass
     *     (Gemma 2); otherwise they are added to the residual and freed
     * @param qkNorm queries and keys pass a per-head RMSNorm (Qwen3)
     * @param fusedQkv q, k and v are slices of one {@code qkv_proj} output, which the value's slice keeps whole (Phi-3)
     * @param fusedGateUp gate and up are halves of one {@code gate_up_proj} output, one array of twice the width
     *     (Phi-3)
     * @param activationSaved {@code [tokens, intermediate]} arrays the gate activation keeps
     *     ({@link MlpActivation#savedArrays}: SiLU 2, GELU 4, tanh GELU 5)
     * @param activationTransient those it creates and frees with the block ({@link MlpActivation#transientArrays})
     * @param scoreSoftcap attention scores pass {@code tanh(s / c) * c} (Gemma 2): the tanh is kept, the quotient and
     *     the product are transient, each of the scores' size
     * @param logitSoftcap logits pass the same cap in the loss head (Gemma 2): three more chunk-sized arrays forward
     *     and four for the cap's derivative
     * @param masks attention masks {@code [batch, 1, seq, seq]} float32 built per step: 1, or 2 when some layers slide
     *     and others attend to the whole prefix (Gemma 2's alternating windows); a window narrower than the sequence
     *     does not shrink the scores, which are computed whole and masked
     */
    public record BlockParts(int norms, boolean normedOutputs, boolean qkNorm, boolean fusedQkv, boolean fusedGateUp,
            int activationSaved, int activationTransient, boolean scoreSoftcap, boolean logitSoftcap, int masks) {

        /** Llama's block: two norms, separate projections, SiLU, no caps, one mask. */
        public static final BlockParts LLAMA = of(DecoderParts.LLAMA, 1);

        /** The parts {@code parts} declare, with {@code masks} mask kinds. */
        static BlockParts of(DecoderParts parts, int masks) {
            return new BlockParts(parts.sandwichNorms() ? 4 : 2, parts.sandwichNorms(), parts.qkNorm(),
                    parts.fusedQkv(), parts.fusedGateUp(), parts.activation().savedArrays(),
                    parts.activation().transientArrays(), parts.attnLogitSoftcapping() != null,
                    parts.finalLogitSoftcapping() != null, masks);
        }

        /** The parts of {@code c}'s family: its {@link DecoderParts} and whether its layers mix windows. */
        static BlockParts of(DecoderConfig c) {
            List<Boolean> sliding = c.slidingLayers();
            return of(c.parts(), (sliding.contains(true) ? 1 : 0) + (sliding.contains(false) ? 1 : 0));
        }
    }

    /**
     * One projection of a block.
     *
     * @param name its module name inside the block ({@code self_attn.q_proj})
     * @param out output features
     * @param in input features
     */
    public record Linear(String name, long out, long in) {
        /** {@code [out, in]}, the weight's shape. */
        public long[] shape() {
            return new long[] {out, in};
        }
    }

    /** Copies the projection list. */
    public ModelShape {
        linears = List.copyOf(linears);
    }

    /**
     * The shape of a decoder config of any family: its projections by name and {@code [out, in]} as the config
     * lists them (fused ones included), its explicit {@code head_dim}, its norms per block, its {@link BlockParts}. bfloat16 and float16
     * checkpoints ({@code torch_dtype}) keep embed_tokens and lm_head in 16 bits.
     */
    public static ModelShape of(DecoderConfig c) {
        List<Linear> linears = c.linearNames().stream().map(n -> {
            long[] inOut = c.inOut(n);
            return new Linear(n, inOut[1], inOut[0]);
        }).toList();
        long norms = c.normShapes().values().stream().mapToLong(shape -> shape[0]).sum();
        boolean sixteen = "bfloat16".equals(c.torchDtype()) || "float16".equals(c.torchDtype());
        return new ModelShape(c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(), c.numAttentionHeads(),
                c.numKeyValueHeads(), c.headDim(), c.vocabSize(), c.tieWordEmbeddings(), sixteen, linears, norms,
                BlockParts.of(c));
    }

    /** {@code heads * headDim}: the query width. */
    public long queryDim() {
        return heads * headDim;
    }

    /** {@code kvHeads * headDim}: the key and value width. */
    public long keyValueDim() {
        return kvHeads * headDim;
    }

    /** Parameters of one block's projections. */
    public long blockLinearParameters() {
        return linears.stream().mapToLong(l -> l.out() * l.in()).sum();
    }

    /** Every parameter of the model: projections, norms, embedding table and (untied) lm_head. */
    public long parameters() {
        long tables = (tiedEmbeddings ? 1 : 2) * vocab * hidden;
        return layers * (blockLinearParameters() + normElements) + hidden + tables;
    }
}
