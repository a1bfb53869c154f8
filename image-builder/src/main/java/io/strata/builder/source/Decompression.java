package io.strata.builder.source;

import com.github.luben.zstd.ZstdInputStream;
import io.strata.builder.BuildException;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

/** Opens a tar stream that may be gzip- or zstd-compressed, recognised by its magic bytes. */
final class Decompression {
    private Decompression() {
    }

    /**
     * Opens {@code raw}; {@code source} names it in the error when a gzip header is malformed (the
     * gzip stream reads its header here, before any tar entry: a fuzzer found that this error
     * escaped without naming the file).
     */
    static InputStream open(InputStream raw, String source) throws IOException {
        BufferedInputStream in = new BufferedInputStream(raw, 1 << 16);
        in.mark(4);
        byte[] magic = in.readNBytes(4);
        in.reset();
        if (magic.length >= 2 && (magic[0] & 0xff) == 0x1f && (magic[1] & 0xff) == 0x8b) {
            try {
                return new GzipCompressorInputStream(in, true);
            } catch (IOException e) {
                throw new BuildException(source + ": not a valid gzip stream: " + e.getMessage(), e);
            }
        }
        if (magic.length == 4 && (magic[0] & 0xff) == 0x28 && (magic[1] & 0xff) == 0xb5 && (magic[2] & 0xff) == 0x2f
                && (magic[3] & 0xff) == 0xfd) {
            return new ZstdInputStream(in);
        }
        return in;
    }

    /** What {@link #open} would take the stream for, for messages. */
    static String describe(InputStream decoded) {
        if (decoded instanceof GzipCompressorInputStream) {
            return "gzip";
        }
        if (decoded instanceof ZstdInputStream) {
            return "zstd";
        }
        return "plain";
    }
}
