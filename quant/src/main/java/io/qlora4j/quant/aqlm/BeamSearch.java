package io.qlora4j.quant.aqlm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.core.Embedding;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * The code update of AQLM ({@code beam_search_xtx.beam_search_optimal_codes}): for each input group (in a random
 * order) and each codebook (in a random order per group) every output group's code is replaced by the candidate
 * that most lowers {@code ||X (W - W_hat)||^2}, kept as {@code beamSize} hypotheses per output group. The change
 * of the squared error for candidate {@code m} is
 * {@code -2 s (cb[m] - cb[old]) . d + s^2 (cb[m]' A cb[m] - cb[old]' A cb[old])} with {@code d} the residual
 * without the current code times {@code X^T X} over the group's columns and {@code A} the group's block of
 * {@code X^T X}, so one pass costs about as much as one product of the weight with {@code X^T X}.
 */
final class BeamSearch {
    private BeamSearch() {}

    /**
     * New codes {@code [out/og, in/ig, K]} (int64) for {@code weight [out, in]} given float32 {@code xtx},
     * {@code codebooks [K, C, og*ig]}, {@code scales [out/og]} and the current {@code codes}.
     */
    static NDArray search(AqlmScheme scheme, NDArray weight, NDArray xtx, NDArray codebooks, NDArray scales,
            NDArray codes, int beamSize, Random rnd) {
        long out = weight.getShape().get(0);
        long in = weight.getShape().get(1);
        long outGroups = out / scheme.outGroupSize();
        int ig = scheme.inGroupSize();
        NDManager state = weight.getManager().newSubManager();
        NDList beam;
        try (NDScope scope = new NDScope()) {
            NDArray estimate = NdAqlmTensor.decode(scheme, out, in, codes.toType(DataType.INT32, false), codebooks,
                    scales).expandDims(0);
            NDArray losses = rowErrors(weight, estimate, xtx).reshape(1, outGroups, scheme.outGroupSize())
                    .sum(new int[] {2});
            beam = keep(new NDList(codes.toType(DataType.INT64, false).expandDims(0), estimate, losses), state);
        }
        for (int g : shuffled((int) (in / ig), rnd)) {
            for (int c : shuffled(scheme.numCodebooks(), rnd)) {
                NDManager next = weight.getManager().newSubManager();
                try (NDScope scope = new NDScope()) {
                    beam = keep(step(scheme, weight, xtx, codebooks, scales, beam, g, c, beamSize), next);
                }
                state.close();
                state = next;
            }
        }
        NDArray best = beam.get(0).get(0);
        best.attach(weight.getManager());
        state.close();
        return best;
    }

    /** Moves {@code arrays} out of the current scope into {@code manager}. */
    private static NDList keep(NDList arrays, NDManager manager) {
        for (NDArray a : arrays) {
            NDScope.unregister(a);
            a.attach(manager);
        }
        return arrays;
    }

    /** One (group, codebook) update of the hypotheses {@code (codes [B, O', I', K], weights [B, out, in], losses [B, O'])}. */
    private static NDList step(AqlmScheme scheme, NDArray weight, NDArray xtx, NDArray codebooks, NDArray scales,
            NDList beam, int g, int c, int beamSize) {
        NDArray beamCodes = beam.get(0);
        NDArray beamWeights = beam.get(1);
        long beams = beamCodes.getShape().get(0);
        long outGroups = beamCodes.getShape().get(1);
        long out = weight.getShape().get(0);
        long in = weight.getShape().get(1);
        int og = scheme.outGroupSize();
        int ig = scheme.inGroupSize();
        int gs = scheme.groupSize();
        long from = (long) g * ig;
        String span = from + ":" + (from + ig);
        NDArray a = xtx.get(span + ", " + span);
        NDArray cb = codebooks.get(c);
        long size = cb.getShape().get(0);
        NDArray rowScales = scales.reshape(1, 1, outGroups);
        NDArray prevPart = lookup(beamCodes.get(":, :, " + g + ", " + c), cb); // [B, O', gs] unscaled
        NDArray prevRows = prevPart.mul(scales.reshape(1, outGroups, 1)).reshape(beams, out, ig);
        // d = (W - W_hat + old part) X^T X over the group's columns
        NDArray d = weight.sub(beamWeights).matMul(xtx.get(":, " + span)).add(prevRows.matMul(a));
        NDArray dGroups = d.reshape(beams, outGroups, gs);
        NDArray cbRows = cb.reshape(size * og, ig);
        NDArray candNorms = cbRows.matMul(a).mul(cbRows).reshape(size, gs).sum(new int[] {1}).reshape(1, size, 1)
                .mul(rowScales.square());
        NDArray oldNorms = prevRows.matMul(a).mul(prevRows).reshape(beams, outGroups, gs).sum(new int[] {2})
                .reshape(beams, 1, outGroups);
        NDArray dots = cb.matMul(dGroups.transpose(0, 2, 1)) // [B, C, O']
                .sub(prevPart.mul(dGroups).sum(new int[] {2}).reshape(beams, 1, outGroups)).mul(rowScales);
        NDArray candidates = beam.get(2).reshape(beams, 1, outGroups).sub(dots.mul(2)).add(candNorms).sub(oldNorms);
        NDList best = candidates.topK(beamSize, 1, false, false); // [B, beam, O']
        NDList chosen = best.get(0).reshape(beams * beamSize, outGroups).topK(beamSize, 0, false, false);
        NDArray flat = chosen.get(1); // [beam', O'] indices into B * beam
        NDArray source = flat.toType(DataType.INT64, false).div(beamSize).toType(DataType.INT64, false);
        NDArray newCode = best.get(1).reshape(beams * beamSize, outGroups).gather(flat, 0);
        long kept = source.getShape().get(0);
        Shape codesShape = new Shape(kept, outGroups, beamCodes.getShape().get(2), beamCodes.getShape().get(3));
        NDArray codes = beamCodes.gather(source.reshape(kept, outGroups, 1, 1).broadcast(codesShape), 0);
        codes.set(new NDIndex(":, :, " + g + ", " + c), newCode);
        NDArray rowSource = source.reshape(kept, outGroups, 1).broadcast(new Shape(kept, outGroups, og))
                .reshape(kept, out, 1).broadcast(new Shape(kept, out, in));
        NDArray weights = beamWeights.gather(rowSource, 0);
        NDArray group = null;
        for (int k = 0; k < scheme.numCodebooks(); k++) {
            NDArray part = lookup(codes.get(":, :, " + g + ", " + k), codebooks.get(k));
            group = group == null ? part : group.add(part);
        }
        weights.set(new NDIndex(":, :, " + span), group.mul(scales.reshape(1, outGroups, 1)).reshape(kept, out, ig));
        return new NDList(codes, weights, chosen.get(0));
    }

    private static NDArray lookup(NDArray index, NDArray table) {
        return Embedding.embedding(index, table, SparseFormat.DENSE).singletonOrThrow();
    }

    /** {@code ||X (W - W_hat)||^2} of every row: {@code [B, out]}. */
    static NDArray rowErrors(NDArray weight, NDArray estimates, NDArray xtx) {
        NDArray delta = estimates.sub(weight);
        return delta.matMul(xtx).mul(delta).sum(new int[] {2});
    }

    private static List<Integer> shuffled(int n, Random rnd) {
        List<Integer> order = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            order.add(i);
        }
        Collections.shuffle(order, rnd);
        return order;
    }
}
