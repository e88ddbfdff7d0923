package io.qlora4j.model.generation;

import io.qlora4j.model.decoder.CausalLM;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.IntConsumer;

/**
 * Autoregressive generation through a KV cache ({@link CachedDecoding}): the prompt is processed once, then one
 * token per step; greedy at temperature 0, otherwise temperature, top-k and top-p sampling from a seeded generator,
 * either way after the repetition penalty on the ids of the sequence so far ({@link Sampler}). Stops after
 * {@code maxNewTokens} or on an end-of-sequence id (which is returned and reported).
 */
public final class Generator {
    private final int maxNewTokens;
    private final Sampler.Settings sampling;
    private final long seed;
    private final Set<Integer> stopTokenIds;

    private Generator(Builder b) {
        if (b.maxNewTokens < 0) {
            throw new IllegalArgumentException("max_new_tokens must be >= 0, got " + b.maxNewTokens);
        }
        this.sampling = new Sampler.Settings(b.temperature, b.topP, b.topK, b.repetitionPenalty);
        this.maxNewTokens = b.maxNewTokens;
        this.seed = b.seed;
        this.stopTokenIds = b.stopTokenIds == null ? null : Set.copyOf(b.stopTokenIds);
    }

    /** Starts a generator: greedy, 128 new tokens, the model's eos ids as stop tokens. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Continues {@code prompt} (at least one id) and returns the new ids; {@code onToken} (may be null)
     * receives each id as soon as it is chosen.
     */
    public int[] generate(CausalLM model, long[] prompt, IntConsumer onToken) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("the prompt must hold at least one token");
        }
        Set<Integer> stops = stopTokenIds != null ? stopTokenIds : new HashSet<>(model.config().eosTokenIds());
        Sampler sampler = new Sampler(sampling, seed);
        boolean[] seen = RepetitionPenalty.seen(model.config().vocabSize(), prompt, 0, prompt.length);
        List<Integer> out = new ArrayList<>();
        try (CachedDecoding decoding = new CachedDecoding(model, 1)) {
            long[] input = prompt;
            while (out.size() < maxNewTokens) {
                int next = sampler.next(decoding.next(input), seen);
                seen[next] = true;
                out.add(next);
                if (onToken != null) {
                    onToken.accept(next);
                }
                if (stops.contains(next)) {
                    break;
                }
                input = new long[] {next};
            }
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Settings of a {@link Generator}. */
    public static final class Builder {
        private int maxNewTokens = 128;
        private double temperature;
        private double topP = 1.0;
        private int topK;
        private RepetitionPenalty repetitionPenalty = RepetitionPenalty.NONE;
        private long seed = 42;
        private List<Integer> stopTokenIds;

        private Builder() {}

        /** Sets the most tokens to generate (default 128). */
        public Builder optMaxNewTokens(int value) {
            maxNewTokens = value;
            return this;
        }

        /** Sets the sampling temperature; 0 (the default) is greedy. */
        public Builder optTemperature(double value) {
            temperature = value;
            return this;
        }

        /** Sets nucleus sampling's probability mass (default 1.0: off). */
        public Builder optTopP(double value) {
            topP = value;
            return this;
        }

        /** Keeps only the {@code value} most likely tokens when sampling (default 0: all of them). */
        public Builder optTopK(int value) {
            topK = value;
            return this;
        }

        /**
         * Sets the penalty on the logits of ids the prompt or the answer already holds (default
         * {@link RepetitionPenalty#NONE}), in greedy decoding too.
         */
        public Builder optRepetitionPenalty(RepetitionPenalty value) {
            repetitionPenalty = value;
            return this;
        }

        /** Sets the sampling seed (default 42). */
        public Builder optSeed(long value) {
            seed = value;
            return this;
        }

        /** Sets the ids that end generation (default: the config's eos_token_id). */
        public Builder optStopTokenIds(List<Integer> value) {
            stopTokenIds = value;
            return this;
        }

        /** Builds the generator, checking the settings. */
        public Generator build() {
            return new Generator(this);
        }
    }
}
