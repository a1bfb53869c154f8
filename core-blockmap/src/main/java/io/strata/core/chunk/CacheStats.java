package io.strata.core.chunk;

/**
 * Counters of a {@link ChunkCache}: hits and misses count chunk lookups, {@code bytesDecompressed}
 * counts uncompressed bytes produced by misses, {@code residentBytes} is slot memory in use.
 */
public record CacheStats(long hits, long misses, long evictions, long bytesDecompressed,
                         long residentBytes, long capacityBytes) {
    public static final CacheStats NONE = new CacheStats(0, 0, 0, 0, 0, 0);
}
