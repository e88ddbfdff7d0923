package io.qlora4j.trainer.cli;

import java.util.Locale;

/** Byte counts as people read them (decimal units, as Hugging Face reports checkpoint sizes). */
final class Sizes {
    private Sizes() {}

    static String human(long bytes) {
        String[] units = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
        double v = bytes;
        int u = 0;
        while (v >= 1000 && u < units.length - 1) {
            v /= 1000;
            u++;
        }
        return u == 0 ? bytes + " B" : String.format(Locale.ROOT, "%.2f %s", v, units[u]);
    }
}
