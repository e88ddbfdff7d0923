package io.qlora4j.data;

import java.util.Arrays;

/** A growable int array: token ids without boxing. */
final class IntList {

    private int[] data = new int[16];
    private int size;

    void add(int value) {
        if (size == data.length) {
            data = Arrays.copyOf(data, data.length * 2);
        }
        data[size++] = value;
    }

    void addAll(int[] values) {
        addAll(values, 0, values.length);
    }

    void addAll(int[] values, int from, int to) {
        int n = to - from;
        if (size + n > data.length) {
            data = Arrays.copyOf(data, Math.max(data.length * 2, size + n));
        }
        System.arraycopy(values, from, data, size, n);
        size += n;
    }

    int[] toArray() {
        return Arrays.copyOf(data, size);
    }
}
