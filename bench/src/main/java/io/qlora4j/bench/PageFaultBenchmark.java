package io.qlora4j.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.NdQuantizedTensor;
import io.qlora4j.quant.QuantType;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;

/**
 * What fresh pages cost (issue 20): NF4+DQ dequantization of the ~100M and 1.1B projection shapes, and a float32
 * {@code zeros} of the same size (nothing but page faults and a memset), per parameter, in a child JVM with the
 * launcher's allocator settings and in one without transparent huge pages ({@code GLIBC_TUNABLES} unset). Each
 * figure is the fastest of 8 after a warm-up. Every array of 8 MB and more is mapped anew (the launcher's
 * {@code MALLOC_MMAP_THRESHOLD_}), so its pages are faulted in on first touch: in 4 KB pages, or in 2 MB ones when
 * glibc asks for them ({@code glibc.malloc.hugetlb=1}).
 */
public final class PageFaultBenchmark {
    /** The projection shapes measured: ~100M's MLP and attention, 1.1B's attention and MLP. */
    private static final List<long[]> SHAPES = List.of(new long[] {768, 768}, new long[] {2048, 768},
            new long[] {2048, 2048}, new long[] {5632, 2048});
    private static final int ROUNDS = 8;

    private PageFaultBenchmark() {}

    /** No arguments: both settings and their ratio; {@code --child} is the measured JVM. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        if (args.length == 1 && args[0].equals("--child")) {
            child();
            return;
        }
        System.out.println("PageFaultBenchmark: ns per parameter, fastest of " + ROUNDS + ", one child JVM per setting");
        System.out.println(Machine.describe());
        Map<String, Long> huge = ChildJvm.run(PageFaultBenchmark.class, ChildJvm.HEAP, "--child");
        Map<String, Long> small = ChildJvm.run(PageFaultBenchmark.class, ChildJvm.HEAP, Map.of("GLIBC_TUNABLES", ""),
                "--child");
        System.out.println(String.format(Locale.ROOT, "%n%-12s %-12s %12s %12s %8s", "shape", "op", "4 KB pages",
                "huge pages", "ratio"));
        for (long[] s : SHAPES) {
            for (String op : List.of("dequantize", "zeros")) {
                String key = op + s[0] + "x" + s[1];
                double a = small.get(key) / 1e3;
                double b = huge.get(key) / 1e3;
                System.out.println(String.format(Locale.ROOT, "%-12s %-12s %12.2f %12.2f %8.2f", s[0] + " x " + s[1],
                        op, a, b, a / b));
            }
        }
    }

    /** Reports picoseconds per parameter for each shape and op. */
    private static void child() {
        BlockwiseQuantizer nf4 = BlockwiseQuantizer.builder().optType(QuantType.NF4).optDoubleQuant(true).build();
        Random random = new Random(20);
        try (NDManager manager = NDManager.newBaseManager()) {
            for (long[] s : SHAPES) {
                float[] w = new float[Math.toIntExact(s[0] * s[1])];
                for (int i = 0; i < w.length; i++) {
                    w[i] = (float) random.nextGaussian() * 0.02f;
                }
                try (NdQuantizedTensor t = NdQuantizedTensor.upload(nf4.quantize(w, s), manager)) {
                    String name = s[0] + "x" + s[1];
                    ChildJvm.result("dequantize" + name, fastestPicosPerElement(t::dequantize, w.length));
                    ChildJvm.result("zeros" + name, fastestPicosPerElement(() -> manager.zeros(new Shape(s)), w.length));
                }
            }
        }
    }

    private static long fastestPicosPerElement(Supplier<NDArray> op, long elements) {
        op.get().close();
        long best = Long.MAX_VALUE;
        for (int round = 0; round < ROUNDS; round++) {
            long start = System.nanoTime();
            op.get().close();
            best = Math.min(best, System.nanoTime() - start);
        }
        return best * 1000 / elements;
    }
}
