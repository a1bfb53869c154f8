package io.strata.core.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.buffer.NativeBuffer;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import io.strata.core.testing.SyntheticImage.Chunk;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The composition rules: every boundary, every segment kind, zero-copy where the data allows. */
class FlatDeviceTest {
    @TempDir
    Path tmp;
    SyntheticImage.Written img;

    @BeforeEach
    void writeImage() throws IOException {
        Random r = new Random(42);
        // Blob 0: zstd chunks with a hole and a short last chunk; blob 1: lz4 and stored chunks, sha256.
        SyntheticImage.Blob b0 = new SyntheticImage.Blob(List.of(
                new Chunk(SyntheticImage.content(r, 65536), Compression.ZSTD, 0),
                new Chunk(SyntheticImage.content(r, 65536), Compression.ZSTD, 3),
                new Chunk(SyntheticImage.content(r, 10000), Compression.ZSTD, 0)), 65536, DigestAlgorithm.BLAKE3);
        SyntheticImage.Blob b1 = new SyntheticImage.Blob(List.of(
                new Chunk(SyntheticImage.content(r, 65536), Compression.LZ4_BLOCK, 0),
                new Chunk(SyntheticImage.content(r, 65536), Compression.NONE, 1),
                new Chunk(SyntheticImage.content(r, 5000), Compression.NONE, 0)), 65536, DigestAlgorithm.SHA256);
        img = SyntheticImage.write(tmp, List.of(b0, b1));
    }

    private FlatDevice open(long cache) throws IOException {
        return FlatDevice.open(img.bootstrap(), new LocalBlobDirectory(img.blobDir()),
                FlatDeviceOptions.defaults().withCacheBytes(cache));
    }

    @Test
    void wholeDeviceReadsAsComposed() throws IOException {
        try (FlatDevice dev = open(1 << 20)) {
            assertEquals(img.expectedDevice().length, dev.size());
            ByteBuffer all = ByteBuffer.allocate((int) dev.size());
            dev.read(0, all);
            assertArrayEquals(img.expectedDevice(), all.array());
        }
    }

    @Test
    void readsCrossingEveryBoundaryMatch() throws IOException {
        byte[] expected = img.expectedDevice();
        List<Long> points = new ArrayList<>(List.of(0L, 4096L, 8192L));
        for (long o : img.blobOffsets()) {
            points.add(o);
        }
        for (var list : img.chunks()) {
            for (var c : list) {
                long base = img.blobOffsets().get(c.blobIndex());
                points.add(base + c.uncompressedOffset());
                points.add(base + c.uncompressedOffset() + c.uncompressedSize());
            }
        }
        try (FlatDevice dev = open(1 << 20)) {
            for (long p : points) {
                for (long start : new long[] {p - 5000, p - 1, p, p + 1}) {
                    for (int len : new int[] {1, 512, 4096, 70000}) {
                        if (start < 0 || start + len > dev.size()) {
                            continue;
                        }
                        ByteBuffer buf = ByteBuffer.allocate(len);
                        dev.read(start, buf);
                        assertArrayEquals(java.util.Arrays.copyOfRange(expected, (int) start, (int) start + len), buf.array(),
                                "read at " + start + "+" + len);
                    }
                }
            }
        }
    }

    /** isReady: false until every chunk a range touches is loaded (or a stored chunk verified), then true. */
    @Test
    void isReadyTellsWhetherAReadWouldLoadChunks() throws IOException {
        long blob0 = img.blobOffsets().get(0);
        long blob1 = img.blobOffsets().get(1);
        var zstd1 = img.chunks().get(0).get(1);
        var stored = img.chunks().get(1).get(1);
        try (FlatDevice dev = open(1 << 20)) {
            assertTrue(dev.isReady(0, 4096), "the bootstrap is a file region");
            assertTrue(dev.isReady(dev.size(), 1), "out of range: resolving fails fast");
            long a = blob0 + zstd1.uncompressedOffset();
            assertFalse(dev.isReady(a + 100, 10));
            assertFalse(dev.isReady(blob0, dev.size() - blob0));
            dev.read(a + 100, ByteBuffer.allocate(10));
            assertTrue(dev.isReady(a, zstd1.uncompressedSize()));
            assertFalse(dev.isReady(a, zstd1.uncompressedSize() + 4096 * 4), "runs on into the next chunk");
            long s = blob1 + stored.uncompressedOffset();
            assertFalse(dev.isReady(s, 4096), "a stored chunk is verified on first read");
            dev.read(s, ByteBuffer.allocate(4096));
            assertTrue(dev.isReady(s, stored.uncompressedSize()), "verified: served from its file");
            dev.read(blob0, ByteBuffer.allocate((int) (dev.size() - blob0)));
            assertTrue(dev.isReady(0, dev.size()));
        }
    }

    @Test
    void outOfRangeIsAnErrorAndZeroLengthIsNot() throws IOException {
        try (FlatDevice dev = open(1 << 20)) {
            assertThrows(OutOfRangeException.class, () -> dev.read(dev.size() - 10, ByteBuffer.allocate(11)));
            assertThrows(OutOfRangeException.class, () -> dev.read(dev.size(), ByteBuffer.allocate(1)));
            assertThrows(OutOfRangeException.class, () -> dev.read(-1, ByteBuffer.allocate(1)));
            dev.read(dev.size(), ByteBuffer.allocate(0));
        }
    }

    @Test
    void storedChunksGoZeroCopyOnceVerified() throws IOException {
        long blob1 = img.blobOffsets().get(1);
        var stored = img.chunks().get(1).get(1);
        long at = blob1 + stored.uncompressedOffset();
        try (FlatDevice dev = open(1 << 20)) {
            List<String> kinds = new ArrayList<>();
            SegmentSink recorder = new SegmentSink() {
                @Override
                public void file(io.strata.core.os.OpenFile file, long position, long length) {
                    kinds.add("file@" + position + "+" + length);
                }

                @Override
                public void memory(NativeBuffer buffer, int offset, int length) {
                    kinds.add("memory+" + length);
                }

                @Override
                public void zeros(long length) {
                    kinds.add("zeros+" + length);
                }
            };
            dev.resolve(at, 8192, recorder);
            assertEquals(List.of("memory+8192"), kinds, "first touch verifies the digest through the cache");
            kinds.clear();
            dev.resolve(at, 8192, recorder);
            assertEquals(List.of("file@" + stored.compressedOffset() + "+8192"), kinds);
            kinds.clear();
            dev.resolve(0, 4096, recorder);
            assertEquals(List.of("file@0+4096"), kinds, "the bootstrap is a file region");
            kinds.clear();
            // The hole of 3 blocks before blob 0's second chunk.
            var second = img.chunks().get(0).get(1);
            dev.resolve(img.blobOffsets().get(0) + second.uncompressedOffset() - 3 * 4096, 3 * 4096, recorder);
            assertEquals(List.of("zeros+12288"), kinds);
        }
    }

    @Test
    void allocationMapAgreesWithTheBytes() throws IOException {
        byte[] expected = img.expectedDevice();
        try (FlatDevice dev = open(1 << 20)) {
            List<long[]> runs = new ArrayList<>();
            dev.mapAllocation(0, dev.size(), (len, hole) -> {
                runs.add(new long[] {len, hole ? 1 : 0});
                return true;
            });
            long pos = 0;
            int holes = 0;
            for (long[] r : runs) {
                assertTrue(r[0] > 0);
                if (r[1] == 1) {
                    holes++;
                    for (long i = pos; i < pos + r[0]; i++) {
                        assertEquals(0, expected[(int) i], "hole byte at " + i);
                    }
                }
                pos += r[0];
            }
            assertEquals(dev.size(), pos);
            // The gap after the bootstrap, the gap between the blobs, and the two holes between chunks.
            assertEquals(4, holes, "holes: " + runs.stream().map(java.util.Arrays::toString).toList());
            // A sub-range starting inside a hole reports it first.
            long holeStart = img.blobOffsets().get(0) + img.chunks().get(0).get(1).uncompressedOffset() - 4096;
            List<Boolean> first = new ArrayList<>();
            dev.mapAllocation(holeStart, 8192, (len, hole) -> {
                first.add(hole);
                assertEquals(4096, len);
                return first.size() < 2;
            });
            assertEquals(List.of(true, false), first);
        }
    }

    @Test
    void cacheCountsHitsAndMissesAndStaysBounded() throws IOException {
        // 8 slots hold all 6 chunks that go through the cache (4 compressed, 2 stored on first touch).
        try (FlatDevice dev = open(8 * 65536)) {
            ByteBuffer all = ByteBuffer.allocate((int) dev.size());
            dev.read(0, all);
            var s1 = dev.cacheStats();
            assertEquals(6, s1.misses(), "each chunk missed once: " + s1);
            assertTrue(s1.residentBytes() <= s1.capacityBytes());
            all.clear();
            dev.read(0, all);
            var s2 = dev.cacheStats();
            assertEquals(s1.misses(), s2.misses(), "second pass misses nothing: " + s2);
            assertEquals(6, s2.hits() - s1.hits(), "every chunk hits: compressed ones in the cache, stored ones read from the file: " + s2);
            assertTrue(s2.bytesDecompressed() >= 4 * 65536L);
        }
    }
}
