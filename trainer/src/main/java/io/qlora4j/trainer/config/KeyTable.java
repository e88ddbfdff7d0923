package io.qlora4j.trainer.config;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;

/**
 * README.md's key table, rendered from {@link ConfigKeys}: one table per argument class, each key with its default,
 * what it sets and its values, and what qlora4j does with it. The README holds this rendering between two marker
 * lines and a test keeps the two equal, so the table cannot drift from the registry the error messages point to.
 */
final class KeyTable {
    /** The line before the table in README.md. */
    static final String BEGIN = "<!-- key table: generated from ConfigKeys; KeyTableTest checks it and rewrites it"
            + " with -Dqlora4j.writeKeyTable=true -->";
    /** The line after the table in README.md. */
    static final String END = "<!-- end of key table -->";

    private KeyTable() {}

    /** The tables in markdown, one per section, each line ending in a newline. */
    static String markdown() {
        StringBuilder md = new StringBuilder();
        for (ConfigKey.Section section : ConfigKey.Section.values()) {
            List<ConfigKey> keys = new ArrayList<>();
            for (ConfigKey key : ConfigKeys.all()) {
                if (key.section() == section) {
                    keys.add(key);
                }
            }
            md.append("\n#### ").append(section.title()).append("\n\n");
            md.append("| key | default | sets | qlora4j |\n|---|---|---|---|\n");
            for (ConfigKey key : keys) {
                md.append("| `").append(key.name()).append("` | ").append(defaultText(key.defaultValue())).append(" | ")
                        .append(meaning(key)).append(" | ").append(support(key)).append(" |\n");
            }
        }
        return md.toString();
    }

    private static String defaultText(Object value) {
        if (value == null) {
            return "";
        }
        if (value instanceof Double d) {
            return "`" + new BigDecimal(Double.toString(d)).stripTrailingZeros().toPlainString() + "`";
        }
        return "`" + value + "`";
    }

    private static String meaning(ConfigKey key) {
        StringBuilder text = new StringBuilder(escape(key.help()));
        if (!key.choices().isEmpty()) {
            text.append("; values: ").append(String.join(", ", key.choices()));
        }
        key.valueAliases().forEach((alias, value) -> text.append("; ").append(alias).append(" = ").append(value));
        if (key.min() != null && !(key.type() == ConfigKey.Type.INT && !key.choices().isEmpty())) {
            text.append("; ").append(key.max() == null || key.max() == Double.MAX_VALUE ? ">= " + number(key.min())
                    : number(key.min()) + " to " + number(key.max()));
        }
        return text.toString();
    }

    private static String support(ConfigKey key) {
        String planned = key.planned().isEmpty() ? "" : "; not implemented yet: " + String.join(", ", key.planned());
        return switch (key.support()) {
            case IMPLEMENTED -> "yes" + planned;
            case INERT -> "accepted, no effect: " + escape(key.why());
            case PLANNED -> "not implemented yet: " + escape(key.why());
            case UNSUPPORTED -> "not implemented: " + escape(key.why());
        };
    }

    private static String number(double d) {
        return new BigDecimal(Double.toString(d)).stripTrailingZeros().toPlainString();
    }

    private static String escape(String text) {
        return text.replace("|", "\\|");
    }
}
