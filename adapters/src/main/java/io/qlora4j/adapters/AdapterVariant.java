package io.qlora4j.adapters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.qlora4j.model.BaseLinear;
import java.util.List;
import java.util.Map;

/**
 * How an adapted layer computes from its base layer and its trained tensors: PEFT's {@code LoraVariant}. One
 * definition of each variant serves training (the forward pass), merges and merge checks ({@link #merge}), and
 * adapter files (the names and shapes of the tensors it trains beside {@code lora_A} and {@code lora_B}). Members
 * are registered in {@link AdapterVariants}; the computations are package-private, so variants live in this
 * package.
 */
public abstract class AdapterVariant {
    AdapterVariant() {}

    /** The variant's name for messages and model cards ({@code LoRA}, {@code DoRA}). */
    public abstract String name();

    /**
     * The {@code adapter_config.json} flag (and LLaMA-Factory key) that selects this variant, such as
     * {@code use_dora}; null for plain LoRA, which no flag selects.
     */
    public abstract String peftFlag();

    /**
     * The PEFT key suffixes of the trainable tensors this variant adds to {@code lora_A} and {@code lora_B}, as
     * saved ({@code lora_magnitude_vector} for DoRA); empty for plain LoRA.
     */
    abstract List<String> extraNames();

    /** The shape of the extra tensor {@code name} for a layer of {@code in} and {@code out} features. */
    abstract long[] extraShape(String name, long in, long out);

    /**
     * Elements of all extra tensors of a layer of {@code in} and {@code out} features (DoRA: {@code out}), trained and
     * stored beside A and B: what memory planning counts for the variant.
     */
    public long extraElements(long in, long out) {
        long total = 0;
        for (String name : extraNames()) {
            long n = 1;
            for (long d : extraShape(name, in, out)) {
                n = Math.multiplyExact(n, d);
            }
            total = Math.addExact(total, n);
        }
        return total;
    }

    /**
     * The starting values of the extra tensors of a layer over {@code base} whose A and B start as in
     * {@code start}, created in {@code manager} (float32, not yet trainable).
     */
    abstract Map<String, NDArray> initExtras(BaseLinear base, AdapterTensors start, NDManager manager);

    /**
     * The layer's output from {@code result = base(x)} (bias included) and {@code loraInput}: x as float32, with
     * dropout applied when {@code dropped} (training with a dropout probability above zero). The result has
     * result's dtype and keeps the graph to x and to every trainable tensor.
     */
    abstract NDArray forward(BaseLinear base, AdapterTensors t, NDArray result, NDArray loraInput, boolean dropped);

    /**
     * The merged weight {@code [out, in]} (float32) that computes, without the adapter, what the adapted layer over
     * {@code weight} computes in evaluation; a new array in weight's manager, no graph.
     */
    abstract NDArray merge(NDArray weight, AdapterTensors t);

    @Override
    public String toString() {
        return name();
    }
}
