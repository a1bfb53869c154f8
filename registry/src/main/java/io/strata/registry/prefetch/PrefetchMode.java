package io.strata.registry.prefetch;

import java.util.Locale;

/**
 * {@code --prefetch none|table|all}: what a remote image fetches in the background, beside what
 * reads ask for. {@code table} (the default) fetches the chunks of the image's RAFS prefetch table;
 * {@code all} then every chunk of every blob, so that the device becomes fully local and keeps
 * working without the registry.
 */
public enum PrefetchMode {
    NONE, TABLE, ALL;

    public static final PrefetchMode DEFAULT = TABLE;

    /** Parses {@code none}, {@code table} or {@code all}; the message is one line for the CLI. */
    public static PrefetchMode parse(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "none" -> NONE;
            case "table" -> TABLE;
            case "all" -> ALL;
            default -> throw new IllegalArgumentException("--prefetch must be none, table or all, not '" + s + "'");
        };
    }

    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
