package io.qlora4j.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.trainer.cli.ProcessMemory;
import java.util.Locale;
import java.util.Map;

/**
 * What a qlora4j process takes before any model array exists, the {@code host_bytes} of the memory planner's
 * {@code process-overhead.properties}: a fresh JVM with the launcher's settings starts the PyTorch engine, makes and
 * reads one small array (libtorch's allocator and thread pool up), and reports its peak RSS. Run on a new machine
 * kind and store the median of the starts it prints.
 */
public final class ProcessOverheadProbe {
    private ProcessOverheadProbe() {}

    /** {@code [starts]} (default 4) fresh JVMs, each's VmHWM; {@code --child} is the measured JVM. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        if (args.length == 1 && args[0].equals("--child")) {
            try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
                NDArray a = manager.ones(new Shape(256, 256));
                a.matMul(a).sum().getFloat();
                ChildJvm.result("hwm", ProcessMemory.statusBytes("VmHWM"));
                ChildJvm.result("rss", ProcessMemory.statusBytes("VmRSS"));
            }
            return;
        }
        int starts = args.length > 0 ? Integer.parseInt(args[0]) : 4;
        System.out.println(Machine.describe());
        for (int i = 0; i < starts; i++) {
            Map<String, Long> r = ChildJvm.run(ProcessOverheadProbe.class, ChildJvm.HEAP, "--child");
            System.out.printf(Locale.ROOT, "start %d: VmHWM %.1f MB, VmRSS %.1f MB%n", i + 1, r.get("hwm") / 1e6,
                    r.get("rss") / 1e6);
        }
    }
}
