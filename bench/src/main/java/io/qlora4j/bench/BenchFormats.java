package io.qlora4j.bench;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.FormatKeys;
import java.util.List;
import java.util.Map;

/**
 * The base formats the benchmarks compare, named by {@code method:bits} so that a JMH parameter or a child JVM's
 * argument can carry one: every format of the registry's on-the-fly menu at its default options, and dense
 * ({@code none:32}, which also stands for "the checkpoint's own format" when the checkpoint is pre-quantized).
 */
final class BenchFormats {
    private BenchFormats() {}

    /** Every on-the-fly format of the registry, in its order (NF4+DQ first). */
    static List<BaseFormat> menu() {
        return BaseFormats.menu();
    }

    /** {@code method:bits}. */
    static String id(BaseFormat format) {
        return format.method() + ":" + format.bits();
    }

    /** The format {@link #id} named. */
    static BaseFormat of(String id) throws ModelException {
        String[] parts = id.split(":", 2);
        if (parts.length != 2) {
            throw new IllegalArgumentException("a format is method:bits, got " + id);
        }
        return parts[0].equals(BaseFormats.DENSE.method()) ? BaseFormats.DENSE
                : BaseFormats.fromKeys(new FormatKeys(parts[0], Integer.parseInt(parts[1]), Map.of()));
    }
}
