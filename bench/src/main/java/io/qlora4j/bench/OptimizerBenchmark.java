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
import java.util.Arrays;
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
                        median(ms), median(ms) / millions);
            }
            long stateBytes = (long) (8 * millions * 1e6);
            long budget = stateBytes / 4;
            // unpaged steps, paged steps and plain copies of the bytes a paged step moves (in and
            // out: twice the state) alternate, so all three see the same machine load
            double[][] runs = new double[3][steps];
            PagingStats last;
            PlainCopy copy = new PlainCopy(2 * stateBytes);
            try (AdamW unpaged = AdamW.builder().optOptim(Optim.PAGED_ADAMW_32BIT).build();
                    AdamW paged = AdamW.builder().optOptim(Optim.PAGED_ADAMW_32BIT)
                            .optPagedBudget(budget).build()) {
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
            double unpagedMs = median(runs[0]);
            double pagedMs = median(runs[1]);
            long moved = last.pagedInBytes() + last.pagedOutBytes();
            System.out.printf("paged_adamw_32bit at 25%% budget (%d MiB of %d MiB): step %.2f ms"
                            + " vs %.2f ms unpaged (%.2fx), paged %d MiB in + %d MiB out per step%n",
                    budget >> 20, stateBytes >> 20, pagedMs, unpagedMs, pagedMs / unpagedMs,
                    last.pagedInBytes() >> 20, last.pagedOutBytes() >> 20);
            System.out.printf("paging bandwidth (bytes moved / extra step time): %.2f GB/s%n",
                    moved / ((pagedMs - unpagedMs) / 1e3) / 1e9);
            System.out.printf("plain copy of %d MiB, direct buffer to direct buffer in 1 MiB pieces: %.2f GB/s%n",
                    copy.bytes() >> 20, copy.bytes() / (median(runs[2]) / 1e3) / 1e9);
        }
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

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }
}
