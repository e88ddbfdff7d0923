package io.qlora4j.model.generation;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Picks the next token from one row of logits the way transformers' {@code generate} does: greedy argmax
 * at temperature 0; otherwise softmax of {@code logits / temperature}, restricted to the smallest set of
 * most probable tokens whose probability reaches {@code topP} (always at least one), then a draw.
 */
final class Sampler {
    private final double temperature;
    private final double topP;
    private final SplittableRandom random;

    Sampler(double temperature, double topP, long seed) {
        validate(temperature, topP);
        this.temperature = temperature;
        this.topP = topP;
        this.random = new SplittableRandom(seed);
    }

    /** Rejects a negative temperature or a top_p outside (0, 1]. */
    static void validate(double temperature, double topP) {
        if (!(temperature >= 0) || !(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException(
                    "temperature must be >= 0 and top_p in (0, 1], got " + temperature + " and " + topP);
        }
    }

    /** The next token id for {@code logits [vocab]}. */
    int next(float[] logits) {
        return temperature == 0 ? argmax(logits) : sample(logits);
    }

    /** The index of the largest logit (the first one on ties, as torch.argmax). */
    static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    private int sample(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double[] probs = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            probs[i] = Math.exp((logits[i] - max) / temperature);
            sum += probs[i];
        }
        for (int i = 0; i < probs.length; i++) {
            probs[i] /= sum;
        }
        Integer[] order = IntStream.range(0, probs.length).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble((Integer i) -> probs[i]).reversed());
        int kept = 0;
        double mass = 0;
        while (kept < order.length && (kept == 0 || mass < topP)) {
            mass += probs[order[kept++]];
        }
        double u = random.nextDouble() * mass;
        for (int k = 0; k < kept; k++) {
            u -= probs[order[k]];
            if (u < 0) {
                return order[k];
            }
        }
        return order[kept - 1];
    }
}
