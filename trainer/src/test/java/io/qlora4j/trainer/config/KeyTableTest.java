package io.qlora4j.trainer.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * README.md's key table is the registry's rendering: it names every key the error messages may mention. Run with
 * {@code -Dqlora4j.writeKeyTable=true} to rewrite the table after changing {@link ConfigKeys}.
 */
class KeyTableTest {
    /** README.md, from the module directory Maven runs tests in. */
    private static final Path README = Path.of("..", "README.md");

    @Test
    void readmeKeyTableIsTheRegistrysRendering() throws Exception {
        String readme = Files.readString(README, StandardCharsets.UTF_8);
        int begin = readme.indexOf(KeyTable.BEGIN);
        int end = readme.indexOf(KeyTable.END);
        assertTrue(begin >= 0 && end > begin, "README.md lacks the key table markers " + KeyTable.BEGIN);
        String current = readme.substring(begin + KeyTable.BEGIN.length() + 1, end);
        String rendered = KeyTable.markdown() + "\n";
        if (Boolean.getBoolean("qlora4j.writeKeyTable")) {
            Files.writeString(README, readme.substring(0, begin + KeyTable.BEGIN.length() + 1) + rendered
                    + readme.substring(end), StandardCharsets.UTF_8);
            return;
        }
        assertEquals(rendered, current, "README.md's key table differs from ConfigKeys; rewrite it with ./mvnw -o -q"
                + " -pl trainer -am test -Dtest=KeyTableTest -Dsurefire.failIfNoSpecifiedTests=false"
                + " -Dqlora4j.writeKeyTable=true");
    }

    @Test
    void everyKeyIsInTheTableWithItsSupport() {
        String table = KeyTable.markdown();
        for (ConfigKey key : ConfigKeys.all()) {
            assertTrue(table.contains("| `" + key.name() + "` |"), key.name());
        }
        assertTrue(table.contains("| `ddp_timeout` | `1800` | DDP timeout in seconds | accepted, no effect: qlora4j"
                + " trains in one process on one device |"), table);
        assertTrue(table.contains("| `stage` | `sft` | training stage; values: sft, pt | yes; not implemented yet: rm,"
                + " ppo, dpo, kto |"), table);
    }
}
