package io.strata.builder;

import io.strata.core.image.DigestAlgorithm;
import io.strata.core.image.RafsImage;

/**
 * How to build an image.
 *
 * @param compressor chunk compression and level
 * @param chunkSize bytes per chunk: a power of two from 4 KiB to 16 MiB
 * @param digest chunk digest algorithm (deduplication key and read-time check)
 * @param buildTime seconds since the epoch for the superblock, the root and implicit directories
 *     ({@code --source-date-epoch} for reproducible output)
 * @param threads chunk digest/compression workers
 * @param legacyKernel also check that the image can be served to kernels 5.15-6.3 (see {@link ImageBuilder})
 * @param prefetch paths from the image root for the RAFS prefetch table ({@code --prefetch LISTFILE}),
 *     in order; a directory stands for everything below it; empty for no table
 */
public record BuildOptions(CompressorSpec compressor, long chunkSize, DigestAlgorithm digest, long buildTime,
                           int threads, boolean legacyKernel, java.util.List<String> prefetch) {
    public static final long DEFAULT_CHUNK_SIZE = 1 << 20;
    /** 9999-12-31T23:59:59Z. */
    public static final long MAX_BUILD_TIME = 253_402_300_799L;

    public BuildOptions {
        if (Long.bitCount(chunkSize) != 1 || chunkSize < RafsImage.MIN_CHUNK_SIZE || chunkSize > RafsImage.MAX_CHUNK_SIZE) {
            throw new IllegalArgumentException("chunk size must be a power of two from 4 KiB to 16 MiB, not " + chunkSize);
        }
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, not " + threads);
        }
        if (buildTime < 0) {
            throw new IllegalArgumentException("build time must not be before 1970, not " + buildTime);
        }
        if (buildTime > MAX_BUILD_TIME) {
            // Tools reading the image print dates; past year 9999 they cannot (Go's time, GNU date).
            throw new IllegalArgumentException("build time must not be after the year 9999, not " + buildTime);
        }
        prefetch = java.util.List.copyOf(prefetch);
    }

    public BuildOptions(CompressorSpec compressor, long chunkSize, DigestAlgorithm digest, long buildTime,
                        int threads, boolean legacyKernel) {
        this(compressor, chunkSize, digest, buildTime, threads, legacyKernel, java.util.List.of());
    }

    /** zstd:3 chunks of 1 MiB with blake3 digests (Nydus's defaults), one worker per CPU. */
    public static BuildOptions defaults(long buildTime) {
        return new BuildOptions(CompressorSpec.defaults(), DEFAULT_CHUNK_SIZE, DigestAlgorithm.BLAKE3, buildTime,
                Runtime.getRuntime().availableProcessors(), false);
    }

    public BuildOptions withCompressor(CompressorSpec c) {
        return new BuildOptions(c, chunkSize, digest, buildTime, threads, legacyKernel, prefetch);
    }

    public BuildOptions withChunkSize(long size) {
        return new BuildOptions(compressor, size, digest, buildTime, threads, legacyKernel, prefetch);
    }

    public BuildOptions withDigest(DigestAlgorithm d) {
        return new BuildOptions(compressor, chunkSize, d, buildTime, threads, legacyKernel, prefetch);
    }

    public BuildOptions withThreads(int n) {
        return new BuildOptions(compressor, chunkSize, digest, buildTime, n, legacyKernel, prefetch);
    }

    public BuildOptions withLegacyKernel(boolean legacy) {
        return new BuildOptions(compressor, chunkSize, digest, buildTime, threads, legacy, prefetch);
    }

    public BuildOptions withPrefetch(java.util.List<String> paths) {
        return new BuildOptions(compressor, chunkSize, digest, buildTime, threads, legacyKernel, paths);
    }

    public BuildOptions withBuildTime(long seconds) {
        return new BuildOptions(compressor, chunkSize, digest, seconds, threads, legacyKernel, prefetch);
    }
}
