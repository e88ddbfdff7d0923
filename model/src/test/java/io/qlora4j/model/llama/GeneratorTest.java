package io.qlora4j.model.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.RopeScaling;
import io.qlora4j.model.generation.Generator;
import io.qlora4j.model.generation.RepetitionPenalty;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

class GeneratorTest {
    private static final DecoderConfig CONFIG =
            LlamaFamily.builder(32, 48, 2, 4, 37).optNumKeyValueHeads(2).optRopeScaling(RopeScaling.linear(2)).build();

    @Test
    void float16ModelGeneratesThroughItsCacheWithFloat32Logits() {
        try (NDManager m = NDManager.newBaseManager();
                CausalLM model = new TinyLlama(CONFIG, 21).build(m, DataType.FLOAT16)) {
            List<Integer> streamed = new ArrayList<>();
            int[] generated = Generator.builder().optMaxNewTokens(10).optStopTokenIds(List.of()).build()
                    .generate(model, new long[] {5, 9, 2, 30}, streamed::add);
            assertEquals(10, generated.length);
            assertArrayEquals(generated, streamed.stream().mapToInt(Integer::intValue).toArray());
            assertTrue(Arrays.stream(generated).allMatch(t -> t >= 0 && t < CONFIG.vocabSize()));
        }
    }

    @Test
    void greedyWithCacheEqualsArgmaxOfAFullForwardAtEveryStep() {
        long[] prompt = {5, 9, 2, 30};
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = new TinyLlama(CONFIG, 21).build(m)) {
            List<Integer> streamed = new ArrayList<>();
            int[] generated = Generator.builder().optMaxNewTokens(10).optStopTokenIds(List.of()).build()
                    .generate(model, prompt, streamed::add);
            assertEquals(10, generated.length);
            assertArrayEquals(generated, streamed.stream().mapToInt(Integer::intValue).toArray());
            long[] sequence = Arrays.copyOf(prompt, prompt.length + generated.length);
            for (int step = 0; step < generated.length; step++) {
                int length = prompt.length + step;
                sequence[length] = generated[step];
                try (NDManager call = m.newSubManager()) {
                    NDArray ids = call.create(Arrays.copyOf(sequence, length), new Shape(1, length));
                    NDArray last = model.forward(ids, null).get("0, -1");
                    assertEquals(last.argMax().getLong(), generated[step], "step " + step);
                }
            }
        }
    }

    @Test
    void repetitionPenaltyAppliesToEveryIdOfPromptAndAnswerBeforeTheArgmax() {
        // the reference applies transformers' RepetitionPenaltyLogitsProcessor by hand to full-forward logits
        long[] prompt = {5, 9, 2, 30};
        float penalty = 3f;
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = new TinyLlama(CONFIG, 21).build(m)) {
            int[] generated = Generator.builder().optMaxNewTokens(10).optRepetitionPenalty(new RepetitionPenalty(penalty))
                    .optStopTokenIds(List.of()).build().generate(model, prompt, null);
            int[] plain = Generator.builder().optMaxNewTokens(10).optStopTokenIds(List.of()).build()
                    .generate(model, prompt, null);
            assertTrue(!Arrays.equals(generated, plain), "the penalty changes this model's greedy answer");
            long[] sequence = Arrays.copyOf(prompt, prompt.length + generated.length);
            for (int step = 0; step < generated.length; step++) {
                int length = prompt.length + step;
                float[] logits;
                try (NDManager call = m.newSubManager()) {
                    NDArray ids = call.create(Arrays.copyOf(sequence, length), new Shape(1, length));
                    logits = model.forward(ids, null).get("0, -1").toFloatArray();
                }
                for (int i = 0; i < length; i++) {
                    int id = (int) sequence[i];
                    boolean first = Arrays.stream(sequence, 0, i).noneMatch(t -> t == id);
                    if (first) {
                        logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty;
                    }
                }
                int best = 0;
                for (int v = 1; v < logits.length; v++) {
                    best = logits[v] > logits[best] ? v : best;
                }
                assertEquals(best, generated[step], "step " + step);
                sequence[length] = generated[step];
            }
        }
    }

    @Test
    void generationStopsAfterTheFirstStopToken() {
        long[] prompt = {5, 9, 2, 30};
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = new TinyLlama(CONFIG, 21).build(m)) {
            int[] free = Generator.builder().optMaxNewTokens(6).optStopTokenIds(List.of()).build()
                    .generate(model, prompt, null);
            int[] stopped = Generator.builder().optMaxNewTokens(6).optStopTokenIds(List.of(free[2])).build()
                    .generate(model, prompt, null);
            int firstStop = 0;
            while (free[firstStop] != free[2]) {
                firstStop++;
            }
            assertArrayEquals(Arrays.copyOf(free, firstStop + 1), stopped);
        }
    }

    @Test
    void seededSamplingIsReproducibleAndLeavesNoArrays() {
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = new TinyLlama(CONFIG, 22).build(m)) {
            Generator sampler = Generator.builder().optMaxNewTokens(8).optTemperature(0.8).optTopP(0.9).optSeed(3)
                    .optStopTokenIds(List.of()).build();
            int before = m.getManagedArrays().size();
            int[] first = sampler.generate(model, new long[] {1, 2, 3}, null);
            assertArrayEquals(first, sampler.generate(model, new long[] {1, 2, 3}, null));
            assertEquals(before, m.getManagedArrays().size());
        }
    }
}
