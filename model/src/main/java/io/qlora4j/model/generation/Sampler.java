package io.qlora4j.model.generation;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Picks the next token from one row of logits the way transformers' {@code generate} does, in its order: the
 * {@link RepetitionPenalty} on the logits of every id the sequence holds so far, then greedy argmax at temperature 0;
 * otherwise {@code logits / temperature}, only the tokens whose logit reaches the {@code topK}-th largest
 * ({@code TopKLogitsWarper}; 0: all), softmax over them, the smallest set of most probable tokens whose probability
 * reaches {@code topP} ({@code TopPLogitsWarper}; always at least one), then a draw.
 */
public final class Sampler {
    private final Settings settings;
    private final SplittableRandom random;

    /**
     * How a token is picked.
     *
     * @param temperature 0 for greedy, else the softmax temperature (> 0)
     * @param topP nucleus mass in (0, 1]; 1 keeps every token
     * @param topK tokens kept by logit before top_p (>= 0; 0 keeps every token)
     * @param repetitionPenalty the penalty on ids already in the sequence
     */
    record Settings(double temperature, double topP, int topK, RepetitionPenalty repetitionPenalty) {
        Settings {
            if (!(temperature >= 0) || !(topP > 0 && topP <= 1) || topK < 0) {
                throw new IllegalArgumentException("temperature must be >= 0, top_p in (0, 1] and top_k >= 0, got "
                        + temperature + ", " + topP + " and " + topK);
            }
        }
    }

    Sampler(Settings settings, long seed) {
        this.settings = settings;
        this.random = new SplittableRandom(seed);
    }

    /**
     * The next token id for {@code logits [vocab]}, {@code seen[id]} telling whether the sequence so far (prompt and
     * generated ids) holds {@code id}. The logits are left as they are.
     */
    int next(float[] logits, boolean[] seen) {
        float[] scores = settings.repetitionPenalty().apply(logits, 0, seen);
        return settings.temperature() == 0 ? argmax(scores) : sample(scores);
    }

    /** The index of the largest logit (the first one on ties, as torch.argmax): the greedy choice. */
    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    private int sample(float[] logits) {
        int k = settings.topK();
        float floor = k == 0 || k >= logits.length ? Float.NEGATIVE_INFINITY : kthLargest(logits, k);
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double[] probs = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            probs[i] = logits[i] >= floor ? Math.exp((logits[i] - max) / settings.temperature()) : 0;
            sum += probs[i];
        }
        for (int i = 0; i < probs.length; i++) {
            probs[i] /= sum;
        }
        Integer[] order = IntStream.range(0, probs.length).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble((Integer i) -> probs[i]).reversed());
        int kept = 0;
        double mass = 0;
        while (kept < order.length && probs[order[kept]] > 0 && (kept == 0 || mass < settings.topP())) {
            mass += probs[order[kept++]];
        }
        double u = random.nextDouble() * mass;
        for (int i = 0; i < kept; i++) {
            u -= probs[order[i]];
            if (u < 0) {
                return order[i];
            }
        }
        return order[kept - 1];
    }

    /** The {@code k}-th largest of {@code logits} (1-based): tokens at or above it survive top-k, ties included. */
    private static float kthLargest(float[] logits, int k) {
        float[] sorted = logits.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length - k];
    }
}
