package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;

/**
 * The float32 working tensors of one page of AdamW state, shaped like the parameter slice they
 * belong to; the update changes them in place.
 *
 * @param expAvg the first moment
 * @param expAvgSq the second moment
 */
record Moments(NDArray expAvg, NDArray expAvgSq) {}
