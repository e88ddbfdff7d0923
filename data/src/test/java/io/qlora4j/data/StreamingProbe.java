package io.qlora4j.data;

import java.nio.file.Path;
import java.util.List;

/**
 * Streams one epoch of a JSONL file in its own JVM (started by {@link StreamingTest} with a small
 * heap): prints the time from loading the pipeline to the first batch, the records and tokens
 * read, and the peak heap used.
 * Arguments: model dir, data file, batch size.
 */
public final class StreamingProbe {

    private StreamingProbe() {
    }

    public static void main(String[] args) throws Exception {
        try (TemplateTokenizer tokenizer = TemplateTokenizer.open(Path.of(args[0]))) {
            long start = System.nanoTime();
            DataSettings settings = DataSettings.builder().setDatasets(List.of(args[1])).optStreaming(true)
                    .optBufferSize(64).optBatchSize(Integer.parseInt(args[2])).optCutoffLen(4096).build();
            DataPipeline pipeline = DataPipeline.load(settings, tokenizer);
            long records = 0;
            long tokens = 0;
            long firstBatchNanos = -1;
            long peak = 0;
            try (BatchIterator batches = pipeline.batches(DataPosition.START)) {
                while (batches.position().epoch() == 0) {
                    Batch batch = batches.next();
                    if (firstBatchNanos < 0) {
                        firstBatchNanos = System.nanoTime() - start;
                    }
                    records += batch.rows();
                    tokens += batch.tokens();
                    Runtime rt = Runtime.getRuntime();
                    peak = Math.max(peak, rt.totalMemory() - rt.freeMemory());
                }
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("first_batch_ms=%d records=%d tokens=%d seconds=%.2f records_per_s=%.0f peak_heap_mb=%d"
                    + " max_heap_mb=%d%n", firstBatchNanos / 1_000_000, records, tokens, seconds, records / seconds,
                    peak >> 20, Runtime.getRuntime().maxMemory() >> 20);
        }
    }
}
