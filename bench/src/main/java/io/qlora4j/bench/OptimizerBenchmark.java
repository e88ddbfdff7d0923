package io.qlora4j.bench;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.qlora4j.optim.AdamW;
import io.qlora4j.optim.Optim;
import io.qlora4j.optim.Parameter;
import io.qlora4j.optim.PagingStats;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Optimizer step time per million LoRA parameters for each {@code optim}, and the paging
 * bandwidth of {@code paged_adamw_32bit} under a budget of a quarter of its state (bytes moved per
 * step over the step time it adds) against a plain copy of the same bytes, measured alternately. Arguments: {@code [pairs] [steps]}: the number
 * of LoRA A/B pairs of shape [16, 4096] / [4096, 16] (default 8, about 1M parameters) and the
 * measured steps (default 10, after 5 warm-up steps); medians are printed. Paged and unpaged
 * steps alternate so that both see the same machine load.
 */
public final class OptimizerBenchmark {

    private static final int RANK = 16;
    private static final int HIDDEN = 4096;
    private static final int WARMUP = 5;

    private OptimizerBenchmark() {}

    /** Runs the benchmark and prints one line per measurement. */
    public static void main(String[] args) {
        int pairs = args.length > 0 ? Integer.parseInt(args[0]) : 8;
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 10;
        try (NDManager manager = NDManager.newBaseManager()) {
            List<Parameter> params = loraParameters(manager, pairs);
            double millions = params.stream().mapToLong(p -> p.value().size()).sum() / 1e6;
            System.out.printf("parameters: %.3f M in %d tensors; %d threads%n", millions,
                    params.size(), Runtime.getRuntime().availableProcessors());
            for (Optim optim : Optim.values()) {
                double[] ms = new double[steps];
                try (AdamW adam = AdamW.builder().optOptim(optim).build()) {
                    for (int i = -WARMUP; i < steps; i++) {
                        double step = timeStep(adam, params);
                        if (i >= 0) {
                            ms[i] = step;
                        }
                    }
                }
                System.out.printf("%-18s step %8.2f ms  = %7.2f ms per M params%n", optim.key(),
                        ForwardBenchmark.median(ms), ForwardBenchmark.median(ms) / millions);
            }
            Paging r = paging(params, steps);
            System.out.printf("paged_adamw_32bit at 25%% budget (%d MiB of %d MiB): step %.2f ms"
                            + " vs %.2f ms unpaged (%.2fx), paged %d MiB in + %d MiB out per step%n",
                    r.budget() >> 20, r.stateBytes() >> 20, r.pagedMs(), r.unpagedMs(), r.pagedMs() / r.unpagedMs(),
                    r.pagedIn() >> 20, r.pagedOut() >> 20);
            System.out.printf("paging bandwidth (bytes moved / extra step time): %.2f GB/s%n", r.pagingGbs());
            System.out.printf("plain copy of %d MiB, direct buffer to direct buffer in 1 MiB pieces: %.2f GB/s%n",
                    r.copyBytes() >> 20, r.copyGbs());
        }
    }

    /**
     * Medians of the paging measurement: the state and its budget, the paged and unpaged step times, the bytes a
     * paged step moves, and the plain copy of twice the state.
     */
    record Paging(long stateBytes, long budget, double pagedMs, double unpagedMs, long pagedIn, long pagedOut,
            long copyBytes, double copyMs) {
        /** Bytes moved per second of the time paging adds to a step, GB/s. */
        double pagingGbs() {
            return (pagedIn + pagedOut) / ((pagedMs - unpagedMs) / 1e3) / 1e9;
        }

        /** The plain copy's rate, GB/s. */
        double copyGbs() {
            return copyBytes / (copyMs / 1e3) / 1e9;
        }
    }

    /** Measures paging on {@code pairs} LoRA A/B pairs over {@code steps} steps (after the warm-up). */
    static Paging paging(int pairs, int steps) {
        try (NDManager manager = NDManager.newBaseManager()) {
            return paging(loraParameters(manager, pairs), steps);
        }
    }

    /**
     * {@code paged_adamw_32bit} under a budget of a quarter of its state against the same unpaged, and a plain copy
     * of the bytes a paged step moves (in and out: twice the state), alternating so all three see the same load.
     */
    private static Paging paging(List<Parameter> params, int steps) {
        long stateBytes = 8 * params.stream().mapToLong(p -> p.value().size()).sum();
        long budget = stateBytes / 4;
        double[][] runs = new double[3][steps];
        PagingStats last;
        PlainCopy copy = new PlainCopy(2 * stateBytes);
        try (AdamW unpaged = AdamW.builder().optOptim(Optim.PAGED_ADAMW_32BIT).build();
                AdamW paged = AdamW.builder().optOptim(Optim.PAGED_ADAMW_32BIT).optPagedBudget(budget).build()) {
            for (int i = -WARMUP; i < steps; i++) {
                double unpagedMs = timeStep(unpaged, params);
                double pagedMs = timeStep(paged, params);
                double copyMs = copy.millis();
                if (i >= 0) {
                    runs[0][i] = unpagedMs;
                    runs[1][i] = pagedMs;
                    runs[2][i] = copyMs;
                }
            }
            last = paged.pagingStats();
        }
        return new Paging(stateBytes, budget, ForwardBenchmark.median(runs[1]), ForwardBenchmark.median(runs[0]), last.pagedInBytes(),
                last.pagedOutBytes(), copy.bytes(), ForwardBenchmark.median(runs[2]));
    }

    /** LoRA-shaped float32 parameters with fixed accumulated gradients. */
    private static List<Parameter> loraParameters(NDManager manager, int pairs) {
        Random random = new Random(1);
        List<Parameter> params = new ArrayList<>();
        for (int i = 0; i < pairs; i++) {
            params.add(parameter(manager, random, "layers." + i + ".lora_A.weight", new Shape(RANK, HIDDEN)));
            params.add(parameter(manager, random, "layers." + i + ".lora_B.weight", new Shape(HIDDEN, RANK)));
        }
        return params;
    }

    private static Parameter parameter(NDManager manager, Random random, String name, Shape shape) {
        float[] values = new float[Math.toIntExact(shape.size())];
        float[] grad = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) random.nextGaussian() * 0.02f;
            grad[i] = (float) random.nextGaussian() * 1e-3f;
        }
        NDArray value = manager.create(values, shape);
        value.setRequiresGradient(true);
        try (NDScope scope = new NDScope();
                GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            scope.suppressNotUsedWarning();
            collector.backward(value.mul(manager.create(grad, shape)).sum());
        }
        return new Parameter(name, value);
    }

    /** The wall time of one optimizer step in ms. */
    private static double timeStep(AdamW adam, List<Parameter> params) {
        long start = System.nanoTime();
        adam.step(params, 1e-4);
        return (System.nanoTime() - start) / 1e6;
    }

    /** Copies between direct buffers in 1 MiB pieces, as the paged store's host side moves pages. */
    private static final class PlainCopy {
        private static final int PIECE = 1 << 20;
        private final ByteBuffer[] from;
        private final ByteBuffer[] to;

        PlainCopy(long bytes) {
            int pieces = Math.toIntExact(Math.max(1, bytes / PIECE));
            from = new ByteBuffer[pieces];
            to = new ByteBuffer[pieces];
            for (int i = 0; i < pieces; i++) {
                from[i] = ByteBuffer.allocateDirect(PIECE);
                to[i] = ByteBuffer.allocateDirect(PIECE);
            }
        }

        long bytes() {
            return (long) from.length * PIECE;
        }

        double millis() {
            long start = System.nanoTime();
            for (int i = 0; i < from.length; i++) {
                to[i].clear().put(from[i].clear());
            }
            return (System.nanoTime() - start) / 1e6;
        }
    }
}
