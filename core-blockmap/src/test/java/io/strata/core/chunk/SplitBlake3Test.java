package io.strata.core.chunk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.luben.zstd.Zstd;
import io.strata.core.digest.Blake3;
import io.strata.core.image.Compression;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * A chunk's BLAKE3 split between the loading thread and a helper ({@link SplitBlake3}), with zstd's
 * streamed decompression publishing pieces as it goes: the same verdict as hashing the whole chunk,
 * under concurrency, and a load abandoned part-way leaves no helper stuck.
 */
class SplitBlake3Test {
    private static final int MIB = 1 << 20;
    private static final boolean MULTI_CORE = Runtime.getRuntime().availableProcessors() > 1;

    @Test
    void streamedZstdAndSplitHashAgreeWithTheWholeChunk() throws IOException {
        Random random = new Random(11);
        int[] lengths = {SplitBlake3.MIN_LENGTH, SplitBlake3.MIN_LENGTH + 1, 300_000, MIB - 1, MIB, 2 * MIB + 5};
        SplitBlake3 split = new SplitBlake3(4 * MIB);
        Decompressor zstd = Decompressor.forAlgorithm(Compression.ZSTD);
        ByteBuffer dst = ByteBuffer.allocateDirect(4 * MIB);
        for (int len : lengths) {
            byte[] data = compressible(random, len);
            ByteBuffer src = direct(Zstd.compress(data, 3));
            byte[] expected = hash(data);
            // Begins only while a core is free for the helper; on one core it never does.
            assertEquals(MULTI_CORE, split.begin(dst, len), "begin, length " + len);
            if (!MULTI_CORE) {
                continue;
            }
            try {
                assertEquals(len, zstd.decompressInPieces(src, src.capacity(), dst, dst.capacity(), split));
                byte[] got = new byte[len];
                dst.get(0, got);
                assertArrayEquals(data, got, "decompressed, length " + len);
                assertTrue(split.matches(expected, 0), "digest, length " + len);
            } finally {
                split.end();
            }
            expected[31] ^= 1;
            assertTrue(split.begin(dst, len));
            try {
                zstd.decompressInPieces(src, src.capacity(), dst, dst.capacity(), split);
                assertFalse(split.matches(expected, 0), "a wrong digest is refused, length " + len);
            } finally {
                split.end();
            }
        }
        zstd.close();
    }

    @Test
    void shortOrLongZstdFramesAreRefused() throws IOException {
        byte[] data = compressible(new Random(3), MIB);
        byte[] frame = Zstd.compress(data, 3);
        Decompressor zstd = Decompressor.forAlgorithm(Compression.ZSTD);
        ByteBuffer dst = ByteBuffer.allocateDirect(MIB);
        SplitBlake3 split = new SplitBlake3(MIB);
        ByteBuffer truncated = direct(java.util.Arrays.copyOf(frame, frame.length / 2));
        IOException e = assertThrows(IOException.class,
                () -> zstd.decompressInPieces(truncated, truncated.capacity(), dst, MIB, split));
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
        ByteBuffer whole = direct(frame);
        e = assertThrows(IOException.class,
                () -> zstd.decompressInPieces(whole, whole.capacity(), dst, MIB - 4096, split));
        assertTrue(e.getMessage().contains("larger"), e.getMessage());
        byte[] garbage = frame.clone();
        for (int i = 4; i < garbage.length; i += 7) {
            garbage[i] ^= 0x5A;
        }
        ByteBuffer bad = direct(garbage);
        assertThrows(IOException.class, () -> zstd.decompressInPieces(bad, bad.capacity(), dst, MIB, split));
        // The context is reset after each failure: a good frame decompresses again.
        assertEquals(MIB, zstd.decompressInPieces(whole, whole.capacity(), dst, MIB, split));
        zstd.close();
    }

    /** A load abandoned part-way (a frame that does not decompress) ends at once and frees the helper. */
    @Test
    void anAbandonedLoadFreesItsHelper() {
        byte[] data = compressible(new Random(5), MIB);
        ByteBuffer dst = direct(data);
        SplitBlake3 split = new SplitBlake3(MIB);
        for (int i = 0; i < 50; i++) {
            assertEquals(MULTI_CORE, split.begin(dst, MIB));
            if (!MULTI_CORE) {
                return;
            }
            split.published(SplitBlake3.PIECE * (i % 4));
            split.end();
        }
        assertTrue(split.begin(dst, MIB));
        split.end();
    }

    /**
     * Eight threads load chunks at once: only some get a helper (one per spare core, and only while a
     * core is free); every verdict is right either way, and the helper was used.
     */
    @Test
    void concurrentLoadsAllGetTheRightVerdict() throws Exception {
        int threads = 8;
        int rounds = 40;
        Random random = new Random(9);
        byte[][] chunks = new byte[4][];
        byte[][] digests = new byte[4][];
        for (int i = 0; i < chunks.length; i++) {
            chunks[i] = compressible(random, MIB - i * 70_001);
            digests[i] = hash(chunks[i]);
        }
        AtomicInteger split = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<?>> results = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int seed = t;
                results.add(pool.submit(() -> {
                    SplitBlake3 s = new SplitBlake3(MIB);
                    ByteBuffer dst = ByteBuffer.allocateDirect(MIB);
                    for (int r = 0; r < rounds; r++) {
                        int c = (seed + r) % chunks.length;
                        byte[] data = chunks[c];
                        if (!s.begin(dst, data.length)) {
                            continue;
                        }
                        split.incrementAndGet();
                        try {
                            // Write and publish the chunk piece by piece, as a streamed decompression does.
                            for (int at = 0; at < data.length; at += SplitBlake3.PIECE) {
                                int n = Math.min(SplitBlake3.PIECE, data.length - at);
                                dst.put(at, data, at, n);
                                s.published(at + n);
                            }
                            byte[] expected = digests[c].clone();
                            boolean wrong = r % 3 == 0;
                            if (wrong) {
                                expected[r % 32] ^= 4;
                            }
                            assertEquals(!wrong, s.matches(expected, 0), "chunk " + c + " round " + r);
                        } finally {
                            s.end();
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : results) {
                f.get(60, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals(MULTI_CORE, split.get() > 0, "loads that had a helper: " + split.get());
    }

    private static byte[] hash(byte[] data) {
        byte[] out = new byte[32];
        new Blake3().hash(data, 0, data.length, out, 0);
        return out;
    }

    /** Text-like bytes (compressible, so zstd's frame has several blocks of real work). */
    private static byte[] compressible(Random random, int len) {
        byte[] b = new byte[len];
        for (int i = 0; i < len; i++) {
            b[i] = (byte) ('a' + random.nextInt(random.nextInt(8) + 1));
        }
        return b;
    }

    private static ByteBuffer direct(byte[] bytes) {
        ByteBuffer b = ByteBuffer.allocateDirect(bytes.length);
        b.put(0, bytes);
        return b;
    }
}
