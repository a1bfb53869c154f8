package io.strata.core.chunk;

/**
 * Counters of a {@link ChunkCache}: {@code hits} found the chunk ready, {@code misses} loaded it,
 * {@code waits} found another reader loading it and shared that load; {@code bytesDecompressed}
 * counts uncompressed bytes produced by misses, {@code residentBytes} is slot memory in use.
 */
public record CacheStats(long hits, long misses, long waits, long evictions, long bytesDecompressed,
                         long residentBytes, long capacityBytes) {
    public static final CacheStats NONE = new CacheStats(0, 0, 0, 0, 0, 0, 0);
}
