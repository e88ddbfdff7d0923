package io.qlora4j.trainer;

import java.nio.file.Path;

/** A child process for lock tests: opens the run directory {@code args[0]}, says "locked", and waits to be killed. */
final class RunDirectoryHolder {
    private RunDirectoryHolder() {}

    public static void main(String[] args) throws Exception {
        RunDirectory.open(Path.of(args[0]), false, true);
        System.out.println("locked");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
