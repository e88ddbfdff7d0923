package io.qlora4j.trainer;

import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.model.ModelException;
import io.qlora4j.optim.Parameter;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * What a run trains and how it is written out: the LoRA adapters of a frozen base, or every weight of a
 * small model ({@code finetuning_type: full}). The optimizer sees only {@link #parameters()}.
 */
interface TrainableWeights {
    /** The trainable arrays in a fixed order, each requiring a gradient, keyed by their file names. */
    List<Parameter> parameters();

    /** Whether the embedding matrix is among the parameters (the step then backpropagates into it). */
    boolean trainsEmbeddings();

    /** Switches dropout on (training) or off (evaluation). */
    void setTraining(boolean training);

    /** Sets the seed every dropout mask of the next forward pass derives from. */
    void setDropoutSeed(long seed);

    /** Writes the trained weights as a loadable directory (a PEFT adapter or a Hugging Face model). */
    void save(Path dir) throws IOException, ModelException;

    /**
     * The name of the first parameter holding a NaN or an infinity, or null when every value is finite: checked
     * before a checkpoint is written, so that no checkpoint of diverged weights is ever called good.
     */
    static String firstNonFinite(List<Parameter> parameters) {
        for (Parameter p : parameters) {
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                if (!Float.isFinite(p.value().abs().max().toType(DataType.FLOAT32, false).getFloat())) {
                    return p.name();
                }
            }
        }
        return null;
    }
}
