package io.qlora4j.bench;

import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.llama.LlamaFamily;
import java.util.Locale;

/** The Llama shapes the benchmarks run, in one place so that every benchmark and the suite mean the same model. */
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

    /** One line naming the shape. */
    static String describe(DecoderConfig c) {
        return String.format(Locale.ROOT, "hidden %d, intermediate %d, layers %d, heads %d (kv %d), vocab %d",
                c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(), c.numAttentionHeads(),
                c.numKeyValueHeads(), c.vocabSize());
    }
}
