package io.qlora4j.model.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.generation.Perplexity;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PerplexityTest {
    @TempDir
    Path dir;

    @Test
    void nllEqualsLogSoftmaxOfTheLogitsComputedInDouble() throws Exception {
        Path source = TinyModels.writeTinyModel(dir);
        long[] ids = {1, 5, 9, 9, 44, 3, 17};
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = ModelLoader.builder().build().load(source, m)) {
            float[] logits = model.forward(m.create(ids, new Shape(1, ids.length)), null).toFloatArray();
            int vocab = TinyModels.VOCAB;
            double expected = 0;
            for (int t = 0; t + 1 < ids.length; t++) {
                double max = Double.NEGATIVE_INFINITY;
                for (int v = 0; v < vocab; v++) {
                    max = Math.max(max, logits[t * vocab + v]);
                }
                double sum = 0;
                for (int v = 0; v < vocab; v++) {
                    sum += Math.exp(logits[t * vocab + v] - max);
                }
                expected += max + Math.log(sum) - logits[t * vocab + (int) ids[t + 1]];
            }
            Perplexity p = Perplexity.of(model, ids);
            assertEquals(ids.length - 1, p.tokens());
            assertEquals(expected, p.nll(), 1e-5 * expected);
            assertEquals(Math.exp(expected / 6), p.perplexity(), 1e-4);
            assertEquals(0, Perplexity.of(model, new long[] {1}).tokens());
        }
    }
}
