package io.strata.core.device;

/**
 * How a RAFS image is composed into a flat device.
 *
 * @param cacheBytes bound on decompressed chunk memory
 * @param legacyKernel serve a rewritten bootstrap (absolute chunk addresses, no device table) that
 *     kernels from 5.15 mount, instead of the flatdev layout that needs Linux 6.4+
 */
public record FlatDeviceOptions(long cacheBytes, boolean legacyKernel) {
    /** 256 MiB: a few hundred 1 MiB chunks, enough for a container's hot set, small for a host. */
    public static final long DEFAULT_CACHE_BYTES = 256L << 20;

    public static FlatDeviceOptions defaults() {
        return new FlatDeviceOptions(DEFAULT_CACHE_BYTES, false);
    }

    public FlatDeviceOptions withLegacyKernel(boolean legacy) {
        return new FlatDeviceOptions(cacheBytes, legacy);
    }

    public FlatDeviceOptions withCacheBytes(long bytes) {
        return new FlatDeviceOptions(bytes, legacyKernel);
    }
}
