package io.qlora4j.trainer.plan;

import io.qlora4j.model.decoder.DecoderConfig;
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
 */
public record ModelShape(long hidden, long intermediate, int layers, long heads, long kvHeads, long headDim, long vocab,
        boolean tiedEmbeddings, boolean sixteenBitTables, List<Linear> linears, long normElements) {

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
     * lists them (fused ones included), its explicit {@code head_dim}, its norms per block. bfloat16 and float16
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
                c.numKeyValueHeads(), c.headDim(), c.vocabSize(), c.tieWordEmbeddings(), sixteen, linears, norms);
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
