package io.qlora4j.bench;

import io.qlora4j.quant.Simd;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A benchmark child process as its parent sees it: the child's {@code result.key=value} lines ({@link
 * ChildJvm#result}) are collected, its other output passed through, and its stderr too, but for the JVM's incubator
 * warning (the first line of a child given {@link Simd#MODULE}, which the launcher drops as well).
 *
 * <p>A <em>paced</em> child ({@link ChildJvm#PACED}) takes its timed steps one at a time on its parent's word: it
 * prints {@code pace.ready} and waits for a line on its stdin before each timed step, prints {@code
 * pace.stepUs=<microseconds>} after it, and waits once more after its last step, until its stdin ends. A parent holding
 * several such children lets them step in turn ({@link #step}), so that a machine whose speed drifts over minutes moves
 * every contender of a round alike, while each keeps its own process and memory.
 */
final class ChildProcess implements AutoCloseable {
    /** The start of a result line, {@code result.key=value} ({@link ChildJvm#result}). */
    static final String RESULT = "result.";
    /** The start of a pace line, which the child's {@link ChildJvm#awaitTurn} and {@link ChildJvm#stepTaken} print. */
    static final String PACE = "pace.";
    /** A paced child's word that it waits for the next one. */
    static final String READY = "ready";
    /** The start of a paced child's word on its step's time, in microseconds. */
    static final String STEP_US = "stepUs=";

    private final Process process;
    private final String name;
    private final BufferedReader out;
    private final Writer in;
    private final Thread stderr;
    private final Map<String, Long> results = new HashMap<>();

    private ChildProcess(Process process, String name) {
        this.process = process;
        this.name = name;
        this.out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        this.in = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        this.stderr = new Thread(() -> passStderr(process.getErrorStream()), "child stderr");
        stderr.setDaemon(true);
        stderr.start();
    }

    /** Starts {@code builder}'s process; {@code name} names it in errors. */
    static ChildProcess start(ProcessBuilder builder, String name) throws IOException {
        return new ChildProcess(builder.start(), name);
    }

    /**
     * Waits until the paced child is ready for its next timed step (the first time: loaded and warmed up); an error
     * naming the child when it ends or says anything else first.
     */
    void awaitTurn() throws IOException, InterruptedException {
        String pace = readToPace();
        if (pace == null) {
            finish(); // a failed child's exit status names the failure
            throw new IllegalStateException(name + " ended without waiting for its turn: is it paced ("
                    + ChildJvm.PACED + "=1)?");
        }
        if (!pace.equals(READY)) {
            throw new IllegalStateException(name + " said " + PACE + pace + " where " + PACE + READY + " was due");
        }
    }

    /**
     * Lets the waiting child take one timed step, then waits until it is ready again; returns the step's time in
     * milliseconds, as the child measured it.
     */
    double step() throws IOException, InterruptedException {
        in.write("go\n");
        in.flush();
        String pace = readToPace();
        if (pace == null || !pace.startsWith(STEP_US)) {
            throw new IllegalStateException(name + " said " + (pace == null ? "nothing more" : PACE + pace)
                    + " where " + PACE + STEP_US + "<microseconds> was due");
        }
        double ms = Long.parseLong(pace.substring(STEP_US.length())) / 1e3;
        awaitTurn();
        return ms;
    }

    /**
     * Runs {@code rounds} rounds of the waiting paced {@code children}'s steps: in each, one step of every child in
     * turn, {@code pauseMs} apart, the first child of round {@code r} being child {@code r % n}; returns each child's
     * step times, {@code [child][round]}, in milliseconds.
     */
    static double[][] lockstep(List<ChildProcess> children, int rounds, long pauseMs)
            throws IOException, InterruptedException {
        int n = children.size();
        double[][] ms = new double[n][rounds];
        for (int round = 0; round < rounds; round++) {
            for (int turn = 0; turn < n; turn++) {
                int c = (round + turn) % n;
                Thread.sleep(pauseMs);
                ms[c][round] = children.get(c).step();
            }
        }
        return ms;
    }

    /**
     * Per round, {@code childMs} over {@code referenceMs}, two series of step times of the same rounds (two rows of
     * {@link #lockstep}'s result).
     */
    static double[] ratios(double[] childMs, double[] referenceMs) {
        double[] ratios = new double[childMs.length];
        for (int round = 0; round < ratios.length; round++) {
            ratios[round] = childMs[round] / referenceMs[round];
        }
        return ratios;
    }

    /** {@code ratios} to two decimals, as a list: {@code [0.98, 1.02]}. */
    static String rounds(double[] ratios) {
        return Arrays.toString(Arrays.stream(ratios).mapToObj(x -> String.format(Locale.ROOT, "%.2f", x)).toArray());
    }

    /**
     * Lets the child finish (its stdin ends), passes the rest of its output through and returns its results; a non-zero
     * exit is an error naming the child.
     */
    Map<String, Long> finish() throws IOException, InterruptedException {
        in.close();
        while (readToPace() != null) {
            // a child that finishes prints no more pace lines; the results are collected on the way
        }
        int exit = process.waitFor();
        stderr.join();
        if (exit != 0) {
            throw new IllegalStateException(name + " exited with status " + exit);
        }
        return Map.copyOf(results);
    }

    /** Ends a child that has not finished (the parent failed part-way). */
    @Override
    public void close() {
        process.destroyForcibly();
    }

    /** Reads stdout up to the next pace line, whose text after {@code pace.} it returns; null at the end. */
    private String readToPace() throws IOException {
        for (String line = out.readLine(); line != null; line = out.readLine()) {
            if (line.startsWith(RESULT)) {
                String[] kv = line.substring(RESULT.length()).split("=", 2);
                results.put(kv[0], Long.parseLong(kv[1]));
            } else if (line.startsWith(PACE)) {
                return line.substring(PACE.length());
            } else {
                System.out.println(line);
            }
        }
        return null;
    }

    /** Copies a child's stderr to this one's, its first line unless it is the incubator warning, the rest as it comes. */
    private static void passStderr(InputStream in) {
        try (in) {
            ByteArrayOutputStream first = new ByteArrayOutputStream();
            for (int b = in.read(); b != -1; b = in.read()) {
                first.write(b);
                if (b == '\n') {
                    break;
                }
            }
            if (!first.toString(StandardCharsets.UTF_8).equals(Simd.WARNING + "\n")) {
                first.writeTo(System.err);
            }
            in.transferTo(System.err);
        } catch (IOException e) {
            System.err.println("qlora4j bench: reading a child's stderr: " + e.getMessage());
        }
    }
}
