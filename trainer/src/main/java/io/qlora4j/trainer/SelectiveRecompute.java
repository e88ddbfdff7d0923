package io.qlora4j.trainer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import io.qlora4j.adapters.LoraLinear;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.GraphScalars;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.decoder.BlockCalls;
import io.qlora4j.model.decoder.DecoderBlock;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Selective recompute: the forward pass keeps the frozen base products {@code x W^T (+ b)} of the chosen projections
 * of every block, and the block's recompute for its backward pass takes them back instead of multiplying again, so
 * that only the cheap work (norms, RoPE, the attention core, activations, LoRA's rank-r products) runs twice.
 *
 * <p>Autograd never saw a kept product being made, so it cannot carry the gradient through {@code W} to the
 * projection's input. The recompute therefore cuts the block's graph into pieces: at the input of every projection
 * whose product is kept and at the residual stream between the attention and the MLP half, each cut a leaf standing
 * for the array the pieces before it made. Backpropagation then runs piece by piece from the top: the block output's
 * gradient first, then each cut in the reverse order of its making with its gradient completed by hand, the leaf's
 * (what the adapters and any recomputed projection sent back) plus {@code dL/dproduct W} of each kept product
 * ({@link LinearLayer#inputGradient} of its base, the same product autograd would have formed). A cut's gradient is
 * whole when its turn comes: everything made after it belongs to pieces already done. The mid-block cut keeps the
 * pieces apart, so no expensive part of the block is traversed twice.
 *
 * <p>The values of the forward pass are those of a full recompute (the kept product is the recompute's product, the
 * same kernel on the same input); the gradients are the same sums added in another order, equal to float rounding.
 * Only frozen bases qualify: a projection that is neither a {@link LoraLinear} nor a {@link BaseLinear} (fully
 * trained weights are refused by {@link TrainStep}) is recomputed as before.
 */
final class SelectiveRecompute {
    private final Set<String> kept;

    /** Keeps the base products of the projections called {@code kept} ({@code self_attn.o_proj}, ...). */
    SelectiveRecompute(Set<String> kept) {
        this.kept = Set.copyOf(kept);
    }

    /**
     * Room for the products {@link #recording} keeps from {@code block} for a micro-batch of {@code tokens} tokens in
     * {@code type}, in {@code manager}; the caller closes it once the block is recomputed.
     */
    KeptProducts room(DecoderBlock block, long tokens, DataType type, NDManager manager) {
        long elements = 0;
        for (String name : block.linearNames()) {
            if (kept.contains(name) && baseOf(block.linear(name)) != null) {
                elements += tokens * block.linear(name).outFeatures();
            }
        }
        return new KeptProducts(manager, elements, type);
    }

    /** The calls of a block's forward pass without a graph, keeping the kept projections' base products in {@code products}. */
    BlockCalls recording(KeptProducts products) {
        return new BlockCalls() {
            @Override
            public NDArray project(String name, LinearLayer layer, NDArray x) {
                BaseLinear base = kept.contains(name) ? baseOf(layer) : null;
                if (base == null) {
                    return layer.forwardGraphFree(x);
                }
                NDArray product = base.forwardGraphFree(x);
                products.put(name, product);
                return over(layer, x, product);
            }

            @Override
            public NDArray midBlock(NDArray hidden) {
                return hidden;
            }

            @Override
            public boolean graphFree() {
                return true;
            }
        };
    }

    /** The calls of a block's recompute with a graph over the products {@link #recording} kept for that block. */
    Replay replay(KeptProducts products) {
        return new Replay(products);
    }

    /** The frozen base whose product a layer adds to, or null when it has none this class can stand in for. */
    private static BaseLinear baseOf(LinearLayer layer) {
        if (layer instanceof LoraLinear lora) {
            return lora.base();
        }
        return layer instanceof BaseLinear base ? base : null;
    }

    /** The layer's output for {@code x} given its base product. */
    private static NDArray over(LinearLayer layer, NDArray x, NDArray product) {
        return layer instanceof LoraLinear lora ? lora.forward(x, product) : product;
    }

    /** A leaf sharing {@code array}'s data that records a graph from here on; it belongs to no scope. */
    private static NDArray leaf(NDArray array) {
        NDArray leaf = array.stopGradient();
        leaf.setRequiresGradient(true);
        NDScope.unregister(leaf);
        return leaf;
    }

    /** The gradient a leaf received, or null when none reached it. */
    private static NDArray gradient(NDArray leaf) {
        return JniUtils.getGradient((PtNDArray) leaf);
    }

    /** One kept product inside a recomputed block: its leaf and the base that made it. */
    private record Product(NDArray leaf, BaseLinear base) {}

    /** A cut: the array the graph before it made, the leaf standing for it, the kept products read from it. */
    private record Cut(NDArray source, NDArray leaf, List<Product> products) {}

    /** One block's recompute: records the cuts as the block's forward makes them, then backpropagates piece by piece. */
    final class Replay implements BlockCalls, AutoCloseable {
        private final KeptProducts products;
        private final List<Cut> cuts = new ArrayList<>();
        private final Map<NDArray, Cut> bySource = new IdentityHashMap<>();

        private Replay(KeptProducts products) {
            this.products = products;
        }

        @Override
        public NDArray project(String name, LinearLayer layer, NDArray x) {
            NDArray product = products.get(name);
            Cut cut = bySource.get(x);
            if (product == null) {
                return layer.forward(cut == null ? x : cut.leaf());
            }
            if (cut == null) {
                cut = cut(x);
            }
            NDArray leaf = leaf(product);
            cut.products().add(new Product(leaf, baseOf(layer)));
            // a copy in the graph (times one: duplicate() records nothing), since the adapter adds into it in place,
            // which a leaf would refuse
            return over(layer, cut.leaf(), GraphScalars.times(leaf, 1));
        }

        @Override
        public NDArray midBlock(NDArray hidden) {
            return cut(hidden).leaf();
        }

        private Cut cut(NDArray source) {
            NDScope.unregister(source);
            Cut cut = new Cut(source, leaf(source), new ArrayList<>());
            cuts.add(cut);
            bySource.put(source, cut);
            return cut;
        }

        /**
         * Backpropagates {@code upstream}, the gradient of the block's output {@code out}, through the recomputed
         * block: into the adapters' tensors and the block input's leaf, as one backward call through the whole block
         * graph would.
         */
        void backward(NDArray out, NDArray upstream) {
            JniUtils.backward((PtNDArray) out, (PtNDArray) upstream, !cuts.isEmpty(), false);
            for (int i = cuts.size() - 1; i >= 0; i--) {
                Cut cut = cuts.get(i);
                NDArray g = gradient(cut.leaf());
                for (Product p : cut.products()) {
                    NDArray dz = gradient(p.leaf());
                    if (dz != null) {
                        NDArray dx = p.base().inputGradient(dz);
                        g = g == null ? dx : g.addi(dx);
                    }
                }
                if (g != null) {
                    JniUtils.backward((PtNDArray) cut.source(), (PtNDArray) g, i > 0, false);
                }
            }
        }

        /** Releases the cuts and the leaves of the kept products (the products themselves stay the caller's). */
        @Override
        public void close() {
            for (Cut cut : cuts) {
                cut.products().forEach(p -> p.leaf().close());
                cut.leaf().close();
                cut.source().close();
            }
        }
    }
}
