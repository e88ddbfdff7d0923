package io.qlora4j.adapters;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.family.ModelLoader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Checks a merged export against what it replaces: the same token sequences run through the base model with the
 * adapter attached (in its base format when the merge was dequantized, so exactly the trained function) and through the
 * exported model loaded as any checkpoint, and the largest difference of their logits is reported. One model is
 * in memory at a time.
 */
public final class MergeCheck {
    private MergeCheck() {}

    /**
     * How far apart the two models' logits are.
     *
     * @param texts the sequences compared
     * @param tokens the positions compared (each a full vocabulary of logits)
     * @param maxAbsDifference the largest {@code |logit(base + adapter) - logit(export)|}
     * @param maxAbsLogit the largest {@code |logit(base + adapter)|}, for scale
     */
    public record Result(int texts, long tokens, double maxAbsDifference, double maxAbsLogit) {}

    /**
     * Compares {@code export} (already written to {@code exportDir}) with its base plus its single adapter over
     * {@code texts} (token ids), computing in float32 on {@code manager}'s device.
     *
     * @throws IllegalArgumentException when the export merged several adapters (a model carries one adapter at a
     *     time) or no text is given
     */
    public static Result compare(MergedExport export, Path exportDir, List<long[]> texts, NDManager manager)
            throws ModelException {
        if (export.adapterDirs().size() != 1) {
            throw new IllegalArgumentException("a merge check compares base + one adapter with the export; "
                    + export.adapterDirs().size() + " adapters were merged");
        }
        if (texts.isEmpty()) {
            throw new IllegalArgumentException("a merge check needs at least one text");
        }
        Path adapter = export.adapterDirs().get(0);
        InitialAdapter start = InitialAdapter.of(adapter, ModelFamilies.read(export.baseDir().resolve("config.json")));
        ModelLoader.Builder reference = ModelLoader.builder().optFormat(export.baseQuantization()).optBaseRewrite(start);
        List<float[]> expected = new ArrayList<>();
        try (NDManager m = manager.newSubManager()) {
            CausalLM model = reference.build().load(export.baseDir(), m);
            LoraAdapters.load(adapter, model, m, start);
            for (long[] ids : texts) {
                expected.add(logits(model, ids, m));
            }
        }
        double maxDifference = 0;
        double maxLogit = 0;
        long tokens = 0;
        try (NDManager m = manager.newSubManager()) {
            CausalLM model = ModelLoader.builder().build().load(exportDir, m);
            for (int i = 0; i < texts.size(); i++) {
                float[] want = expected.get(i);
                float[] got = logits(model, texts.get(i), m);
                for (int j = 0; j < want.length; j++) {
                    maxDifference = Math.max(maxDifference, Math.abs((double) want[j] - got[j]));
                    maxLogit = Math.max(maxLogit, Math.abs(want[j]));
                }
                tokens += texts.get(i).length;
            }
        }
        return new Result(texts.size(), tokens, maxDifference, maxLogit);
    }

    private static float[] logits(CausalLM model, long[] ids, NDManager manager) {
        try (NDManager step = manager.newSubManager()) {
            return model.forward(step.create(ids, new Shape(1, ids.length)), null).toFloatArray();
        }
    }
}
