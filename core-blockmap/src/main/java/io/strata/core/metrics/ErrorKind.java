package io.strata.core.metrics;

import io.strata.core.chunk.ChunkCorruptedException;
import io.strata.core.device.OutOfRangeException;
import java.util.Locale;

/** Why a request was answered with an error, as the metrics name it (the {@code kind} label). */
public enum ErrorKind {
    /** A chunk did not decompress or failed its digest check: EIO for the reads that need it. */
    CORRUPT_CHUNK,
    /** Any other read failure (a blob read failed, a registry did not answer in time): EIO. */
    IO,
    /** The range lies outside the device. */
    OUT_OF_RANGE,
    /** A malformed request: unknown command or flags, a bad header, a length past the limit. */
    INVALID_REQUEST,
    /** A write, trim or write-zeroes on the read-only device. */
    READ_ONLY,
    /** A command this device does not implement. */
    UNSUPPORTED;

    private final String label = name().toLowerCase(Locale.ROOT);

    /** The value of the {@code kind} label. */
    public String label() {
        return label;
    }

    /** The kind of a failed device read. */
    public static ErrorKind of(Exception readFailure) {
        if (readFailure instanceof ChunkCorruptedException) {
            return CORRUPT_CHUNK;
        }
        if (readFailure instanceof OutOfRangeException) {
            return OUT_OF_RANGE;
        }
        return IO;
    }
}
