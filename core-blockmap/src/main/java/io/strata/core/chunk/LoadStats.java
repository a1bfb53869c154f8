package io.strata.core.chunk;

/**
 * Where the time of chunk loads (cache misses) went: {@code loads} chunks loaded (or attempted),
 * nanoseconds spent reading their compressed bytes from the blob (a remote blob's fetch included),
 * decompressing them and checking their digests; {@code corrupt} loads failed a decompression or
 * digest check. Sums, for the metrics; reading them costs the loads nothing.
 */
public record LoadStats(long loads, long readNanos, long decompressNanos, long digestNanos, long corrupt) {
    public static final LoadStats NONE = new LoadStats(0, 0, 0, 0, 0);
}
