package io.qlora4j.bench;

import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.gemma.GemmaFamily;
import io.qlora4j.model.gemma2.Gemma2Family;
import io.qlora4j.model.llama.LlamaFamily;
import io.qlora4j.model.mistral.MistralFamily;
import io.qlora4j.model.phi3.Phi3Family;
import io.qlora4j.model.qwen2.Qwen2Family;
import io.qlora4j.model.qwen3.Qwen3Family;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The model shapes the benchmarks run, in one place so that every benchmark and the suite mean the same model. */
final class BenchModels {
    private BenchModels() {}

    /** About 134M parameters: hidden 768, intermediate 2048, 12 layers, 12 heads, vocab 32000, untied lm_head. */
    static DecoderConfig hundredMillion() {
        return LlamaFamily.builder(768, 2048, 12, 12, 32000).optTorchDtype("bfloat16").build();
    }

    /** TinyLlama-1.1B's shape: hidden 2048, intermediate 5632, 22 layers, 32 heads (4 key/value heads). */
    static DecoderConfig tinyLlama() {
        return LlamaFamily.builder(2048, 5632, 22, 32, 32000).optNumKeyValueHeads(4)
                .optRmsNormEps(1e-5).optTorchDtype("bfloat16").build();
    }

    /** About 21M parameters, for the quick suite: hidden 512, intermediate 1376, 4 layers, 8 heads, vocab 8000. */
    static DecoderConfig small() {
        return LlamaFamily.builder(512, 1376, 4, 8, 8000).optTorchDtype("bfloat16").build();
    }

    /**
     * The ~100M shape of {@link #hundredMillion} in every family, each with its own parts: Mistral's window, Qwen2's
     * q/k/v biases, Qwen3's q/k norms, Gemma's norms, GELU, scaled and tied embeddings with one key/value head,
     * Gemma 2's sandwich norms, soft-caps and alternating window, Phi-3's fused projections. Windows of 4096 do not
     * cut a 256-token sequence; they are there for the masks' cost.
     */
    static Map<String, DecoderConfig> families() {
        int h = 768;
        int inter = 2048;
        int layers = 12;
        int heads = 12;
        int vocab = 32000;
        List<Boolean> alternating = new ArrayList<>();
        for (int i = 0; i < layers; i++) {
            alternating.add(i % 2 == 0);
        }
        Map<String, DecoderConfig> configs = new LinkedHashMap<>();
        configs.put("llama", hundredMillion());
        configs.put("mistral", MistralFamily.builder(h, inter, layers, heads, vocab).optSlidingWindow(4096)
                .optTorchDtype("bfloat16").build());
        configs.put("qwen2", Qwen2Family.builder(h, inter, layers, heads, vocab).optTorchDtype("bfloat16").build());
        configs.put("qwen3", Qwen3Family.builder(h, inter, layers, heads, vocab).optTorchDtype("bfloat16").build());
        configs.put("gemma", GemmaFamily.builder(h, inter, layers, heads, vocab).optNumKeyValueHeads(1)
                .optTorchDtype("bfloat16").build());
        configs.put("gemma2", Gemma2Family.builder(h, inter, layers, heads, vocab).optNumKeyValueHeads(4)
                .optSlidingWindow(4096).optSlidingLayers(alternating).optTorchDtype("bfloat16").build());
        configs.put("phi3", Phi3Family.builder(h, inter, layers, heads, vocab).optTorchDtype("bfloat16").build());
        return configs;
    }

    /** One line naming the shape. */
    static String describe(DecoderConfig c) {
        return String.format(Locale.ROOT, "hidden %d, intermediate %d, layers %d, heads %d (kv %d), vocab %d",
                c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(), c.numAttentionHeads(),
                c.numKeyValueHeads(), c.vocabSize());
    }
}
