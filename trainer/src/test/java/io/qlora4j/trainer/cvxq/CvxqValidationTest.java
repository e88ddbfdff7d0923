package io.qlora4j.trainer.cvxq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.generation.Perplexity;
import io.qlora4j.quant.cvxq.CvxqTensor;
import io.qlora4j.trainer.TinyModel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The reference's model selection: with validation texts, the result is the candidate (every {@code validSize}
 * sequences and the last) with the lowest validation perplexity, and the returned layers, put into a fresh copy of
 * the model, score exactly that perplexity.
 */
class CvxqValidationTest {
    @TempDir
    Path dir;

    @Test
    void theKeptQuantizationIsTheCandidateWithTheLowestValidationPerplexity() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 5);
        List<long[]> calibration = sequences(new Random(1), 8, 24);
        List<long[]> validation = sequences(new Random(2), 3, 24);
        CvxqSettings settings = CvxqSettings.defaults(6).withGroupSize(16).withBatchSize(4).withValidSize(4)
                .withIterations(12);
        List<Double> scores = new ArrayList<>();
        try (NDManager m = NDManager.newBaseManager()) {
            CvxqCalibration.Result r;
            try (CausalLM model = ModelLoader.builder().build().load(base, m)) {
                r = CvxqCalibration.run(model, calibration, validation, settings, line -> {
                    if (line.contains("validation perplexity")) {
                        scores.add(Double.parseDouble(line.split("validation perplexity ")[1].split(" ")[0]));
                    }
                });
            }
            assertEquals(4, scores.size(), "after sequences 4, 8 and 12, and the final quantization");
            double lowest = scores.stream().mapToDouble(Double::doubleValue).min().orElseThrow();
            assertEquals(lowest, r.validationPerplexity(), 5e-5);
            assertTrue(Math.abs(r.bitsPerParameter() - 6) <= 0.01, "the kept candidate meets the target too");
            try (CausalLM fresh = ModelLoader.builder().build().load(base, m)) {
                for (CvxqCalibration.Layer l : r.layers()) {
                    String[] parts = l.prefix().split("\\.", 4);
                    CvxqTensor t = l.weight();
                    fresh.block(Integer.parseInt(parts[2])).setLinear(parts[3], new DenseLinear(
                            m.create(t.dequantize(), new Shape(t.rows(), t.columns())), m.create(l.bias()))).close();
                }
                Perplexity p = Perplexity.NONE;
                for (long[] ids : validation) {
                    p = p.plus(Perplexity.of(fresh, ids));
                }
                assertEquals(r.validationPerplexity(), p.perplexity(), 1e-5 * p.perplexity());
            }
        }
    }

    private static List<long[]> sequences(Random random, int count, int length) {
        List<long[]> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            long[] ids = new long[length];
            for (int t = 0; t < length; t++) {
                ids[t] = 4 + random.nextInt(TinyModel.VOCAB.size() - 4);
            }
            out.add(ids);
        }
        return out;
    }
}
