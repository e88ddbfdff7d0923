package io.qlora4j.trainer;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Named points of a run where a crash test kills it: with {@code -Dqlora4j.crash_at=NAME[:N]} the JVM halts at
 * once (no cleanup, no shutdown hooks, as SIGKILL) the {@code N}th time (default 1) it reaches {@code NAME}, with
 * exit status 137 (128 + SIGKILL's 9). Without the property a point costs one field read. The points are listed in
 * docs/RELIABILITY.md; {@code CrashAnywhereTest} and {@code scripts/crash-test.sh} use them.
 */
final class CrashPoint {
    /** The system property naming the point. */
    static final String PROPERTY = "qlora4j.crash_at";
    /** The exit status of a halted run, as a shell reports a SIGKILLed one. */
    static final int KILLED = 137;

    private static final String NAME;
    private static final int HIT;
    private static final AtomicInteger REACHED = new AtomicInteger();

    static {
        String spec = System.getProperty(PROPERTY, "");
        int colon = spec.lastIndexOf(':');
        NAME = spec.isEmpty() ? null : colon < 0 ? spec : spec.substring(0, colon);
        HIT = colon < 0 ? 1 : Integer.parseInt(spec.substring(colon + 1));
    }

    private CrashPoint() {}

    /** Halts the JVM when this is the chosen point's chosen passage. */
    static void reach(String name) {
        if (name.equals(NAME) && REACHED.incrementAndGet() == HIT) {
            Runtime.getRuntime().halt(KILLED);
        }
    }
}
