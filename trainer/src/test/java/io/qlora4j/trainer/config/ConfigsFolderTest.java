package io.qlora4j.trainer.config;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Every ready-made job in the project's {@code configs/} folder parses and validates (known keys, allowed and
 * implemented values), and documents each key with a comment on its line.
 */
class ConfigsFolderTest {
    /** The folder, from the module directory Maven runs tests in. */
    private static final Path CONFIGS = Path.of("..", "configs");
    private static final Pattern KEY_LINE = Pattern.compile("^[A-Za-z_0-9]+:.*");

    @TestFactory
    Stream<DynamicTest> everyConfigLoadsAndCommentsEachKey() throws Exception {
        List<Path> files = new ArrayList<>();
        try (Stream<Path> listing = Files.list(CONFIGS)) {
            listing.filter(p -> p.toString().endsWith(".yaml") || p.toString().endsWith(".yml")).sorted()
                    .forEach(files::add);
        }
        assertFalse(files.isEmpty(), "no YAML files in " + CONFIGS.toAbsolutePath());
        return files.stream().map(file -> DynamicTest.dynamicTest(file.getFileName().toString(), () -> {
            JobConfig.load(file, List.of());
            for (String line : Files.readAllLines(file)) {
                if (KEY_LINE.matcher(line).matches()) {
                    assertTrue(line.contains(" # "), file + ": no comment on the line '" + line + "'");
                }
            }
        }));
    }
}
