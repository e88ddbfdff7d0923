package io.qlora4j.data;

import java.util.Arrays;
import java.util.List;

/**
 * Pads examples into a {@link Batch} as LLaMA-Factory's SFT collator does with right padding:
 * pad id in the ids, 0 in the attention mask, -100 in the labels; packed rows get per-example
 * segment numbers in the mask and restarting position ids.
 */
final class Collator {

    private final long padId;

    Collator(int padId) {
        this.padId = padId;
    }

    Batch collate(List<Example> examples) {
        int rows = examples.size();
        int columns = 0;
        for (Example e : examples) {
            columns = Math.max(columns, e.length());
        }
        long[] ids = new long[rows * columns];
        long[] mask = new long[rows * columns];
        long[] positions = new long[rows * columns];
        long[] labels = new long[rows * columns];
        Arrays.fill(ids, padId);
        Arrays.fill(labels, Example.IGNORE_INDEX);
        for (int r = 0; r < rows; r++) {
            Example e = examples.get(r);
            int base = r * columns;
            int at = 0;
            int segment = 0;
            for (int length : e.segmentLengths()) {
                segment++;
                for (int p = 0; p < length; p++, at++) {
                    ids[base + at] = e.inputIds()[at];
                    labels[base + at] = e.labels()[at];
                    mask[base + at] = segment;
                    positions[base + at] = p;
                }
            }
        }
        return new Batch(rows, columns, ids, mask, positions, labels);
    }
}
