package io.strata.jmh;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.chunk.CacheStats;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/**
 * A synthetic RAFS image in a temp directory, opened as a {@link FlatDevice}: one blob of
 * {@code chunks} full 1 MiB chunks of text-like content, all with one codec and one digest.
 * The blob's uncompressed space is contiguous on the device from {@link #blobStart}.
 */
final class BenchImage implements AutoCloseable {
    static final int CHUNK = 1 << 20;
    /** Seed of the chunk content; {@link #firstChunk()} gives the same bytes as the image's chunk 0. */
    static final long SEED = 0x5157A7AL;

    final FlatDevice device;
    final long blobStart;
    final int chunks;
    private final Path dir;

    private BenchImage(Path dir, FlatDevice device, long blobStart, int chunks) {
        this.dir = dir;
        this.device = device;
        this.blobStart = blobStart;
        this.chunks = chunks;
    }

    /**
     * Writes and opens an image.
     *
     * @param variant {@code <codec>-<digest>}, e.g. {@code zstd-sha256}, {@code none-sha256}, {@code lz4-blake3}
     * @param cacheBytes chunk cache bound; 0 gives the minimum ({@code ChunkCache.MIN_SLOTS} slots)
     */
    static BenchImage create(String variant, int chunks, long cacheBytes) throws IOException {
        String[] parts = variant.split("-", 2);
        Compression c = parse(Compression.values(), parts[0], Compression::cliName);
        DigestAlgorithm d = parse(DigestAlgorithm.values(), parts[1], DigestAlgorithm::cliName);
        Path dir = Files.createTempDirectory("strata-jmh-");
        try {
            SyntheticImage.Blob blob = SyntheticImage.uniformBlob(new Random(SEED), chunks, CHUNK, c, d);
            // Keep only what reads need: Written also holds the whole expected device in heap.
            SyntheticImage.Written w = SyntheticImage.write(dir, List.of(blob));
            FlatDevice device = FlatDevice.open(w.bootstrap(), new LocalBlobDirectory(w.blobDir()),
                    new FlatDeviceOptions(cacheBytes, false));
            return new BenchImage(dir, device, w.blobOffsets().get(0), chunks);
        } catch (IOException | RuntimeException e) {
            deleteTree(dir);
            throw e;
        }
    }

    /** The uncompressed bytes of chunk 0 of every image. */
    static byte[] firstChunk() {
        return SyntheticImage.content(new Random(SEED), CHUNK);
    }

    long chunkOffset(int chunk) {
        return blobStart + (long) chunk * CHUNK;
    }

    /** Reads every chunk once (fills the cache when it is large enough). */
    void readAll() throws IOException {
        ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);
        for (int i = 0; i < chunks; i++) {
            buf.clear();
            device.read(chunkOffset(i), buf);
        }
    }

    CacheStats stats() {
        return device.cacheStats();
    }

    @Override
    public void close() throws IOException {
        try {
            device.close();
        } finally {
            deleteTree(dir);
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) s.sorted(Comparator.reverseOrder())::iterator) {
                Files.delete(p);
            }
        }
    }

    private static <T> T parse(T[] values, String name, java.util.function.Function<T, String> nameOf) {
        for (T v : values) {
            if (nameOf.apply(v).equals(name)) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown name '" + name + "' in benchmark image variant");
    }
}
