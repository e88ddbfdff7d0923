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
 * bandwidth of {@code paged_adamw_32bit} under a budget of a quarter of its state against a plain
 * copy of the same bytes measured in the same run. Arguments: {@code [pairs] [steps]}: the number
 * of LoRA A/B pairs of shape [16, 4096] / [4096, 16] (default 8, about 1M parameters) and the
 * measured steps (default 10, after 3 warm-up steps); medians are printed.
 */
public final class OptimizerBenchmark {

    private static final int RANK = 16;
    private static final int HIDDEN = 4096;

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
            double unpaged32 = 0;
            for (Optim optim : Optim.values()) {
                double ms = median(time(AdamW.builder().optOptim(optim), params, steps, null));
                System.out.printf("%-18s step %8.2f ms  = %7.2f ms per M params%n", optim.key(), ms,
                        ms / millions);
                if (optim == Optim.ADAMW_TORCH) {
                    unpaged32 = ms;
                }
            }
            long stateBytes = (long) (8 * millions * 1e6);
            long budget = stateBytes / 4;
            List<PagingStats> stats = new ArrayList<>();
            double paged = median(time(AdamW.builder().optOptim(Optim.PAGED_ADAMW_32BIT)
                    .optPagedBudget(budget), params, steps, stats));
            PagingStats last = stats.get(stats.size() - 1);
            long moved = last.pagedInBytes() + last.pagedOutBytes();
            double pagingGbs = moved / ((paged - unpaged32) / 1e3) / 1e9;
            System.out.printf("paged_adamw_32bit at 25%% budget (%d MiB of %d MiB): step %.2f ms"
                            + " (%.2fx unpaged), paged %d MiB in + %d MiB out per step%n",
                    budget >> 20, stateBytes >> 20, paged, paged / unpaged32,
                    last.pagedInBytes() >> 20, last.pagedOutBytes() >> 20);
            System.out.printf("paging bandwidth (extra step time over unpaged): %.2f GB/s%n", pagingGbs);
            System.out.printf("plain copy of the same bytes, direct buffer to direct buffer: %.2f GB/s%n",
                    plainCopyGbs(moved, steps));
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

    /** Step times in ms after 3 warm-up steps; the stats after each measured step when asked. */
    private static double[] time(AdamW.Builder builder, List<Parameter> params, int steps,
            List<PagingStats> stats) {
        double[] ms = new double[steps];
        try (AdamW adam = builder.build()) {
            for (int i = 0; i < 3; i++) {
                adam.step(params, 1e-4);
            }
            for (int i = 0; i < steps; i++) {
                long start = System.nanoTime();
                adam.step(params, 1e-4);
                ms[i] = (System.nanoTime() - start) / 1e6;
                if (stats != null) {
                    stats.add(adam.pagingStats());
                }
            }
        }
        return ms;
    }

    /** The median bandwidth of copying {@code bytes} between direct buffers in 1 MiB pieces. */
    private static double plainCopyGbs(long bytes, int repeats) {
        int piece = 1 << 20;
        int pieces = Math.toIntExact(Math.max(1, bytes / piece));
        ByteBuffer[] from = new ByteBuffer[pieces];
        ByteBuffer[] to = new ByteBuffer[pieces];
        for (int i = 0; i < pieces; i++) {
            from[i] = ByteBuffer.allocateDirect(piece);
            to[i] = ByteBuffer.allocateDirect(piece);
        }
        double[] gbs = new double[repeats + 3];
        for (int r = 0; r < gbs.length; r++) {
            long start = System.nanoTime();
            for (int i = 0; i < pieces; i++) {
                to[i].clear().put(from[i].clear());
            }
            gbs[r] = (double) pieces * piece / (System.nanoTime() - start);
        }
        return median(Arrays.copyOfRange(gbs, 3, gbs.length));
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }
}
