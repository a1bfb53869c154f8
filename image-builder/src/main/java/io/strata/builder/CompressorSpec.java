package io.strata.builder;

import com.github.luben.zstd.Zstd;
import io.strata.core.image.Compression;
import java.util.Locale;

/** A chunk compressor and its level, as given on the command line: {@code none}, {@code lz4}, {@code zstd[:LEVEL]}. */
public record CompressorSpec(Compression compression, int level) {
    /** zstd's own default, and Nydus's ({@code zstd::DEFAULT_COMPRESSION_LEVEL}). */
    public static final int DEFAULT_ZSTD_LEVEL = 3;

    public CompressorSpec {
        if (compression == Compression.GZIP) {
            throw new IllegalArgumentException("gzip chunks are not supported (Strata reads lz4 and zstd chunks)");
        }
        if (compression == Compression.ZSTD && (level < Zstd.minCompressionLevel() || level > Zstd.maxCompressionLevel() || level == 0)) {
            throw new IllegalArgumentException("zstd level must be " + Zstd.minCompressionLevel() + "..-1 or 1.."
                    + Zstd.maxCompressionLevel() + ", not " + level);
        }
    }

    public static CompressorSpec defaults() {
        return new CompressorSpec(Compression.ZSTD, DEFAULT_ZSTD_LEVEL);
    }

    public static CompressorSpec parse(String text) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        String name = t;
        String level = null;
        int colon = t.indexOf(':');
        if (colon >= 0) {
            name = t.substring(0, colon);
            level = t.substring(colon + 1);
        }
        switch (name) {
            case "none":
            case "lz4":
                if (level != null) {
                    throw new IllegalArgumentException("'" + name + "' takes no level: '" + text + "'");
                }
                return new CompressorSpec(name.equals("none") ? Compression.NONE : Compression.LZ4_BLOCK, 0);
            case "zstd":
                if (level == null) {
                    return defaults();
                }
                try {
                    return new CompressorSpec(Compression.ZSTD, Integer.parseInt(level));
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("zstd level is not a number: '" + text + "'");
                }
            default:
                throw new IllegalArgumentException("unknown compressor '" + text + "' (none, lz4, zstd[:LEVEL])");
        }
    }

    @Override
    public String toString() {
        return compression == Compression.ZSTD ? "zstd:" + level : compression.cliName();
    }
}
