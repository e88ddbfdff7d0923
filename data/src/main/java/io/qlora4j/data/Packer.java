package io.qlora4j.data;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Packs supervised examples into rows of at most {@code capacity} tokens as LLaMA-Factory's
 * {@code PackedSupervisedDatasetProcessor}: {@code greedy_knapsack} over the lengths (sorted
 * ascending, each row filled by repeatedly taking the longest length that still fits), and for
 * each length taken the most recent example of that length. Each row keeps its examples'
 * lengths so the attention mask confines every example to itself (neat packing).
 */
final class Packer {

    private Packer() {
    }

    static List<Example> pack(List<Example> examples, int capacity) {
        Map<Integer, Deque<Example>> byLength = new HashMap<>();
        List<Integer> lengths = new ArrayList<>(examples.size());
        for (Example example : examples) {
            if (example.length() > capacity) {
                continue;
            }
            lengths.add(example.length());
            byLength.computeIfAbsent(example.length(), k -> new ArrayDeque<>()).addLast(example);
        }
        Collections.sort(lengths);
        List<Example> rows = new ArrayList<>();
        while (!lengths.isEmpty()) {
            IntList ids = new IntList();
            IntList labels = new IntList();
            IntList segments = new IntList();
            int remaining = capacity;
            int index;
            while ((index = largestFitting(lengths, remaining)) >= 0) {
                int length = lengths.remove(index);
                remaining -= length;
                Example example = byLength.get(length).removeLast();
                ids.addAll(example.inputIds());
                labels.addAll(example.labels());
                segments.add(length);
            }
            rows.add(new Example(ids.toArray(), labels.toArray(), segments.toArray()));
        }
        return rows;
    }

    /** Python's {@code bisect.bisect(sorted, capacity) - 1}: the last index whose value is <= capacity, or -1. */
    private static int largestFitting(List<Integer> sorted, int capacity) {
        int lo = 0;
        int hi = sorted.size();
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (sorted.get(mid) <= capacity) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo - 1;
    }
}
