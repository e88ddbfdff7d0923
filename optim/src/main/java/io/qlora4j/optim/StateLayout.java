package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;

/**
 * How one parameter's state is cut into pages: page {@code i} holds the state of the flattened
 * parameter's elements {@code [i * pageElements, min(size, (i + 1) * pageElements))}.
 *
 * @param size the parameter's element count
 * @param pageElements the elements of a full page
 */
record StateLayout(long size, long pageElements) {

    /** The number of pages, the last one possibly partial. */
    int pages() {
        return Math.toIntExact((size + pageElements - 1) / pageElements);
    }

    /** The element count of page {@code page}. */
    int elements(int page) {
        return Math.toIntExact(Math.min(pageElements, size - page * pageElements));
    }

    /**
     * The view of a flattened parameter-shaped array that page {@code page} covers: the array
     * itself for a single page, else a slice sharing its memory, so in-place updates reach it.
     */
    NDArray slice(NDArray flat, int page) {
        if (pages() == 1) {
            return flat;
        }
        long start = page * pageElements;
        return flat.get(new NDIndex().addSliceDim(start, start + elements(page)));
    }
}
