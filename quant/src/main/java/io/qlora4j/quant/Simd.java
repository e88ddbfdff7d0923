package io.qlora4j.quant;

import java.lang.management.ManagementFactory;
import java.util.concurrent.TimeUnit;
import java.util.function.IntConsumer;

/**
 * Whether codes decode in SIMD lanes ({@link SimdNibbles} for NF4, FP4, GPTQ's and AWQ's 4 bits, {@link SimdFields}
 * for HQQ's packed bit fields) or in scalar loops: in SIMD when the JVM was started with the JDK's incubating Vector
 * API ({@code --add-modules jdk.incubator.vector}: the {@code qlora4j} launcher adds it and drops the warning line the
 * JVM then prints; a Java API user adds it to their JVM), the CPU has 16 float lanes (AVX-512), and the system property
 * {@code qlora4j.simd} is not {@code false}. Both ways give the same bits.
 *
 * <p>Until C2 has compiled a Vector API method, every vector op in it allocates an object: the first 1.1B step's
 * decoding made about 300 MB of garbage, and G1 grew the heap by as much for the rest of the run. Each kernel's
 * warm-up ({@link #warmUpNibbles}, {@link #warmUpFields}) runs it on a few values until its calls allocate nothing,
 * where a heap collection follows (a model load).
 *
 * <p>To decode another format in SIMD: add its kernel beside these two (arrays in and out, no interface calls; the
 * only classes that may name {@code jdk.incubator.vector}), call it where its scalar loop runs when {@link #enabled}
 * holds, give it a warm-up here called from its upload, and check it bit for bit against the scalar loop in a test
 * that runs with the module.
 */
public final class Simd {
    /** The module the SIMD kernels need. */
    public static final String MODULE = "jdk.incubator.vector";
    /** The JVM option that loads {@link #MODULE}, as the {@code qlora4j} launcher passes it. */
    public static final String JVM_OPTION = "--add-modules=" + MODULE;
    /** The line a JVM given {@link #MODULE} prints on stderr before anything else. */
    public static final String WARNING = "WARNING: Using incubator modules: " + MODULE;
    /** Whether codes decode in SIMD lanes in this JVM. */
    static final boolean ENABLED = moduleLoaded() && !switchedOff() && SimdNibbles.native16Lanes();
    /** The longest a warm-up runs: a JVM that never compiles the kernel (-Xint) still loads its model. */
    private static final long WARM_UP_LIMIT_NANOS = TimeUnit.SECONDS.toNanos(5);
    /** How long a warm-up runs where allocations cannot be counted (about twice what counting needed here). */
    private static final long UNCOUNTED_WARM_UP_NANOS = TimeUnit.SECONDS.toNanos(1);
    /** Consecutive calls without an allocation that show the compiled kernel runs. */
    private static final int QUIET_CALLS = 3;

    private Simd() {}

    /** Whether codes decode in SIMD lanes in this JVM. */
    public static boolean enabled() {
        return ENABLED;
    }

    /** Whether the JVM resolved {@link #MODULE} at start. */
    public static boolean moduleLoaded() {
        return ModuleLayer.boot().findModule(MODULE).isPresent();
    }

    /** How this JVM decodes packed codes on a CPU, and what would change it, in one phrase. */
    public static String describe() {
        if (ENABLED) {
            return "NF4, FP4, GPTQ and AWQ 4-bit and HQQ's packed codes decoded in SIMD lanes (" + MODULE + ")";
        }
        if (!moduleLoaded()) {
            return "packed codes decoded by scalar loops (" + JVM_OPTION + ", which the qlora4j launcher passes where"
                    + " the runtime has the module, decodes NF4, FP4, GPTQ and AWQ 4-bit and HQQ's in SIMD lanes on"
                    + " AVX-512)";
        }
        return "packed codes decoded by scalar loops (" + (switchedOff() ? "-Dqlora4j.simd=false"
                : "fewer than 16 float lanes on this CPU") + ")";
    }

    /** Whether the user turned the SIMD kernels off ({@code -Dqlora4j.simd=false}). */
    private static boolean switchedOff() {
        return "false".equals(System.getProperty("qlora4j.simd"));
    }

    /**
     * Compiles the 4-bit kernels (NF4, FP4, GPTQ, AWQ) once per JVM where they are used (about half a second and 300
     * MB of short-lived garbage on the measured Xeon), so that no training step pays for its interpreted runs; a no-op
     * elsewhere and after the first call. Returns whether the kernels' calls stopped allocating.
     */
    public static boolean warmUpNibbles() {
        return ENABLED && NibblesWarmedUp.DONE;
    }

    /** {@link #warmUpNibbles} for HQQ's kernel, {@link SimdFields}. */
    public static boolean warmUpFields() {
        return ENABLED && FieldsWarmedUp.DONE;
    }

    /**
     * The 4-bit kernels' warm-up (both nibble orders, and the fields of words AWQ reads), run by the JVM once, when the
     * holder is first used.
     */
    private static final class NibblesWarmedUp {
        static final boolean DONE;

        static {
            int blocksize = 64;
            float[] scales = {1f, -0.5f, 3f};
            byte[] codes = new byte[scales.length * blocksize / 2 + SimdNibbles.CODES_SLACK];
            float[] codebook = QuantType.NF4.codebook();
            float[] tables = new float[scales.length * SimdNibbles.STEP];
            float[] out = new float[scales.length * blocksize];
            int[] words = new int[SimdNibbles.STEP * scales.length + 1];
            float[] fields = new float[words.length];
            DONE = warm(call -> {
                int blocks = 1 + call % scales.length;
                SimdNibbles.scaleCodebook(codebook, scales, blocks, tables);
                SimdNibbles.decode(codes, tables, blocks, blocksize, (call & 1) == 0, out);
                SimdNibbles.decodeField(words, call & 1, 4 * (call % 8), tables, 0, fields, 0,
                        SimdNibbles.STEP * blocks);
            });
        }
    }

    /** HQQ's kernel's warm-up: both forms, rows of one to three steps. */
    private static final class FieldsWarmedUp {
        static final boolean DONE;

        static {
            int count = 3 * SimdFields.STEP;
            byte[] bytes = new byte[count + 1];
            int[] words = new int[count + 1];
            float[] zeros = new float[count];
            float[] scales = new float[count];
            float[] out = new float[count];
            DONE = warm(call -> {
                int values = SimdFields.STEP * (1 + call % 3);
                SimdFields.widen(bytes, words, values + call % 2);
                SimdFields.decodeRow(words, 4 * (call & 1), 0xF, 7.5f, 0.25f, out, values);
                SimdFields.decodeRow(words, 3 * (call % 10), 0x7, zeros, scales, out, values);
            });
        }
    }

    /**
     * Runs {@code call(0), call(1), ...} until {@link #QUIET_CALLS} calls in a row allocate nothing; where the runtime
     * lacks {@code jdk.management} (a trimmed image) and so cannot count allocations, for a fixed second instead.
     */
    private static boolean warm(IntConsumer call) {
        boolean counted = ModuleLayer.boot().findModule("jdk.management").isPresent();
        long deadline = System.nanoTime() + (counted ? WARM_UP_LIMIT_NANOS : UNCOUNTED_WARM_UP_NANOS);
        int quiet = 0;
        for (int i = 0; quiet < QUIET_CALLS && System.nanoTime() < deadline; i++) {
            long before = counted ? Allocations.ofThisThread() : 0;
            call.accept(i);
            quiet = counted && Allocations.ofThisThread() == before ? quiet + 1 : 0;
        }
        return quiet == QUIET_CALLS;
    }

    /** Bytes this thread has allocated: the only use of {@code jdk.management}, loaded where that module is. */
    private static final class Allocations {
        private static final com.sun.management.ThreadMXBean THREADS =
                (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

        static long ofThisThread() {
            return THREADS.getCurrentThreadAllocatedBytes();
        }
    }
}
