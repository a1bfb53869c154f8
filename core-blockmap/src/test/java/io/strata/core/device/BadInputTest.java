package io.strata.core.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.blob.MissingBlobsException;
import io.strata.core.chunk.ChunkCorruptedException;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.image.ImageFormatException;
import io.strata.core.image.RafsImage;
import io.strata.core.testing.Fixtures;
import io.strata.core.testing.SyntheticImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad images get errors that name the file, field and value; corrupt chunks fail only their reads. */
class BadInputTest {
    @TempDir
    Path tmp;

    private Path copyBootstrap(java.util.function.Consumer<byte[]> damage) throws IOException {
        byte[] b = Files.readAllBytes(Fixtures.nydusBootstrap());
        damage.accept(b);
        Path p = tmp.resolve("damaged.boot");
        Files.write(p, b);
        return p;
    }

    private ImageFormatException rejects(Path bootstrap) {
        return assertThrows(ImageFormatException.class, () -> RafsImage.open(bootstrap));
    }

    @Test
    void truncatedBootstrap() throws IOException {
        Path p = tmp.resolve("short.boot");
        Files.write(p, Arrays.copyOf(Files.readAllBytes(Fixtures.nydusBootstrap()), 2000));
        ImageFormatException e = rejects(p);
        assertTrue(e.getMessage().contains(p.toString()) && e.getMessage().contains("truncated"), e.getMessage());

        Path cut = tmp.resolve("cut.boot");
        Files.write(cut, Arrays.copyOf(Files.readAllBytes(Fixtures.nydusBootstrap()), 16384));
        ImageFormatException e2 = rejects(cut);
        assertTrue(e2.getMessage().contains("chunk_table"), "the chunk table at 0x4000 is cut off: " + e2.getMessage());
    }

    @Test
    void flippedSuperblockBytes() throws IOException {
        ImageFormatException magic = rejects(copyBootstrap(b -> b[1024] ^= 0x01));
        assertEquals("superblock.magic", magic.field());
        assertTrue(magic.getMessage().contains("0xe0f5e1e3"), magic.getMessage());

        ImageFormatException blk = rejects(copyBootstrap(b -> b[1024 + 12] = 9));
        assertEquals("superblock.blkszbits", blk.field());
        assertTrue(blk.getMessage().contains("unsupported block size 512"), blk.getMessage());

        ImageFormatException devs = rejects(copyBootstrap(b -> b[1024 + 86] = 2));
        assertEquals("superblock.extra_devices", devs.field());

        ImageFormatException compat = rejects(copyBootstrap(b -> b[1024 + 11] = 0));
        assertTrue(compat.getMessage().contains("--raw"), compat.getMessage());
    }

    @Test
    void badTablesAndMappings() throws IOException {
        // Blob table entry compression (blob table at 0x1000, field at +76): unknown, then gzip.
        ImageFormatException unknown = rejects(copyBootstrap(b -> b[0x1000 + 76] = 9));
        assertEquals("blob_table[0].compression", unknown.field());
        ImageFormatException gzip = rejects(copyBootstrap(b -> b[0x1000 + 76] = 2));
        assertTrue(gzip.getMessage().contains("gzip/zran"), gzip.getMessage());
        // mapped_blkaddr (device slot at 1408, +68) pointing into the bootstrap.
        ImageFormatException overlap = rejects(copyBootstrap(b -> { b[1408 + 68] = 1; b[1408 + 69] = 0; }));
        assertEquals("device_table[0].mapped_blkaddr", overlap.field());
        assertTrue(overlap.getMessage().contains("overlaps the bootstrap"), overlap.getMessage());
        // Blob table pushed outside the file (ext at 1152, blob_table_offset at +8).
        ImageFormatException outside = rejects(copyBootstrap(b -> b[1152 + 8 + 2] = 0x10));
        assertTrue(outside.getMessage().contains("outside the file"), outside.getMessage());
    }

    // Fixture offsets: device slot 0 at 1408 (blocks +64, mapped_blkaddr +68); blob table entry 0 at
    // 0x1000 (chunk_count +72, compressed_size +88, uncompressed_size +96); chunk-info entries at
    // 0x4000, 80 bytes each (compressed_size +40, compressed_offset +48, uncompressed_offset +56).
    private static final int SLOT = 1408;
    private static final int BLOB = 0x1000;
    private static final int CHUNK1 = 0x4000 + 80;

    private static java.util.function.Consumer<byte[]> putInt(int at, long v) {
        return b -> ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(at, (int) v);
    }

    private static java.util.function.Consumer<byte[]> putLong(int at, long v) {
        return b -> ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(at, v);
    }

    private ImageFormatException rejects(java.util.function.Consumer<byte[]> damage, String field, String says) throws IOException {
        ImageFormatException e = rejects(copyBootstrap(damage));
        assertEquals(field, e.field(), e.getMessage());
        assertTrue(e.getMessage().contains(says), e.getMessage());
        assertTrue(e.getMessage().startsWith(tmp.resolve("damaged.boot") + ": "), e.getMessage());
        assertEquals(1, e.getMessage().lines().count(), e.getMessage());
        return e;
    }

    @Test
    void deviceSlotBlocksMustBeTheBlobsUncompressedSize() throws IOException {
        // The fixture: 9 blocks for 36864 bytes. 2^31 blocks for a 36 KiB blob was accepted before.
        rejects(putInt(SLOT + 64, 1L << 31), "device_table[0].blocks", "uncompressed size 36864 (9 blocks)");
        rejects(putInt(SLOT + 64, 8), "device_table[0].blocks", "(9 blocks)");
        rejects(putInt(SLOT + 64, 10), "device_table[0].blocks", "(9 blocks)");
    }

    @Test
    void blobUncompressedSizeMustFitItsChunks() throws IOException {
        // With the slot made to agree, an 8 TiB blob of 2 chunks of at most 1 MiB is refused.
        rejects(putLong(BLOB + 96, 1L << 43).andThen(putInt(SLOT + 64, 1L << 31)),
                "blob_table[0].uncompressed_size", "larger than its 2 chunk(s) of at most 1048576 bytes");
        rejects(putLong(BLOB + 96, -4096), "blob_table[0].uncompressed_size", "outside 0..");
        rejects(putLong(BLOB + 88, -1), "blob_table[0].compressed_size", "negative");
    }

    @Test
    void mappedBlkaddrMustStayNearTheExtentBeforeIt() throws IOException {
        // Near 2^32: past the 32-bit block address space.
        rejects(putInt(SLOT + 68, 0xfffffff9L), "device_table[0].mapped_blkaddr", "32-bit block address space");
        // 2^31: inside it, but 8 TiB of zeros between the bootstrap and the blob.
        rejects(putInt(SLOT + 68, 1L << 31), "device_table[0].mapped_blkaddr", "leaves a gap of 2147483643 blocks after the bootstrap");
        // Block 513: one block past the 2 MiB alignment Nydus gave it (block 512).
        rejects(putInt(SLOT + 68, 513), "device_table[0].mapped_blkaddr", "leaves a gap");
        // Anywhere from the bootstrap's end up to that alignment is a valid place.
        for (long at : new long[] {5, 128, 512}) {
            RafsImage image = RafsImage.open(copyBootstrap(putInt(SLOT + 68, at)));
            assertEquals(at + 9, image.flatDeviceBlocks());
        }
    }

    @Test
    void chunksMustLieInsideTheirBlob() throws IOException {
        // Uncompressed: chunk 1 (16931 bytes at 0) moved to the blob's last block, or before its start.
        rejects(putLong(CHUNK1 + 56, 32768), "chunk_table[1].uncompressed_offset", "ends past blob " + Fixtures.NYDUS_BLOB_ID);
        rejects(putLong(CHUNK1 + 56, -4096), "chunk_table[1].uncompressed_offset", "negative or not 4 KiB-aligned");
        rejects(putLong(CHUNK1 + 56, Long.MAX_VALUE & -4096L), "chunk_table[1].uncompressed_offset", "ends past blob");
        // Compressed: past the blob's 14554 compressed bytes, or before its start.
        rejects(putLong(CHUNK1 + 48, 14554 - 4827), "chunk_table[1].compressed_offset", "compressed size 14554");
        rejects(putLong(CHUNK1 + 48, -1), "chunk_table[1].compressed_offset", "negative");
        rejects(putLong(CHUNK1 + 48, Long.MAX_VALUE), "chunk_table[1].compressed_offset", "compressed size 14554");
    }

    @Test
    void blobFileMustHoldWhatTheTableSays() throws IOException {
        // The blob table claims more compressed bytes than the blob file has: refused when the blob is opened.
        Path boot = copyBootstrap(putLong(BLOB + 88, 20000));
        RafsImage.open(boot);
        ImageFormatException e = assertThrows(ImageFormatException.class, () -> FlatDevice.open(boot,
                new LocalBlobDirectory(Fixtures.nydusDir()), FlatDeviceOptions.defaults()));
        assertEquals(Fixtures.nydusDir().resolve(Fixtures.NYDUS_BLOB_ID), e.file());
        assertTrue(e.getMessage().contains("file size = 14554: truncated") && e.getMessage().contains("needs 20000 bytes"), e.getMessage());

        // A blob file cut short of its last chunk.
        Path blobs = Files.createDirectories(tmp.resolve("cut"));
        Files.write(blobs.resolve(Fixtures.NYDUS_BLOB_ID),
                Arrays.copyOf(Files.readAllBytes(Fixtures.nydusDir().resolve(Fixtures.NYDUS_BLOB_ID)), 7000));
        Path noSize = copyBootstrap(putLong(BLOB + 88, 0)); // compressed size unknown: only the chunks say
        ImageFormatException cut = assertThrows(ImageFormatException.class, () -> FlatDevice.open(noSize,
                new LocalBlobDirectory(blobs), FlatDeviceOptions.defaults()));
        assertTrue(cut.getMessage().contains("file size = 7000") && cut.getMessage().contains("the end of its last chunk"), cut.getMessage());
    }

    @Test
    void blobIdsMustBeFileNames() throws IOException {
        // The id is also the device slot's tag; both are changed so that only the id's form is wrong.
        for (String id : new String[] {"..", ".", "a b", "caf\u00e9"}) {
            byte[] raw = id.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
            rejects(b -> {
                for (int at : new int[] {BLOB, SLOT}) {
                    Arrays.fill(b, at, at + 64, (byte) 0);
                    System.arraycopy(raw, 0, b, at, raw.length);
                }
            }, "blob_table[0].blob_id", "not a usable blob id");
        }
    }

    @Test
    void blobsMappedFarApartAreRefused() throws IOException {
        Random r = new Random(4);
        var blob = SyntheticImage.uniformBlob(r, 2, 65536, Compression.LZ4_BLOCK, DigestAlgorithm.SHA256);
        SyntheticImage.Written w = SyntheticImage.write(tmp.resolve("apart"), List.of(blob, blob));
        byte[] b = Files.readAllBytes(w.bootstrap());
        ByteBuffer bb = ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        bb.putInt(1408 + 128 + 68, 0x4000_0000); // blob 1 a TiB after blob 0
        Files.write(w.bootstrap(), b);
        ImageFormatException e = rejects(w.bootstrap());
        assertEquals("device_table[1].mapped_blkaddr", e.field());
        assertTrue(e.getMessage().contains("after device 0"), e.getMessage());
    }

    @Test
    void legacyRewriteRefusesABootstrapChangedSinceItWasOpened() throws IOException {
        Path boot = copyBootstrap(b -> { });
        RafsImage image = RafsImage.open(boot);
        Files.write(boot, Arrays.copyOf(Files.readAllBytes(boot), 8192));
        ImageFormatException e = assertThrows(ImageFormatException.class, () -> io.strata.core.image.LegacyBootstrap.rewrite(image));
        assertEquals("file size", e.field());
        assertTrue(e.getMessage().contains("changed since the bootstrap was opened (20480 bytes)"), e.getMessage());
    }

    @Test
    void twoOverlappingBlobMappings() throws IOException {
        Random r = new Random(1);
        var blob = SyntheticImage.uniformBlob(r, 2, 65536, Compression.LZ4_BLOCK, DigestAlgorithm.SHA256);
        SyntheticImage.Written w = SyntheticImage.write(tmp.resolve("two"), List.of(blob, blob));
        byte[] b = Files.readAllBytes(w.bootstrap());
        ByteBuffer bb = ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        bb.putInt(1408 + 128 + 68, bb.getInt(1408 + 68) + 1); // blob 1 starts inside blob 0
        Files.write(w.bootstrap(), b);
        ImageFormatException e = rejects(w.bootstrap());
        assertEquals("device_table[1].mapped_blkaddr", e.field());
    }

    @Test
    void missingBlobsAreListed() throws IOException {
        Random r = new Random(2);
        var a = SyntheticImage.uniformBlob(r, 1, 65536, Compression.ZSTD, DigestAlgorithm.BLAKE3);
        var b = SyntheticImage.uniformBlob(r, 1, 65536, Compression.ZSTD, DigestAlgorithm.BLAKE3);
        SyntheticImage.Written w = SyntheticImage.write(tmp.resolve("m"), List.of(a, b));
        Files.delete(w.blobPath(0));
        Files.delete(w.blobPath(1));
        MissingBlobsException e = assertThrows(MissingBlobsException.class, () -> FlatDevice.open(w.bootstrap(),
                new LocalBlobDirectory(w.blobDir()), FlatDeviceOptions.defaults()));
        assertEquals(w.blobIds(), e.missing());
        assertTrue(e.getMessage().contains(w.blobIds().get(0)) && e.getMessage().contains(w.blobIds().get(1)));
    }

    @Test
    void flippedByteInACompressedChunkFailsOnlyItsReads() throws IOException {
        // Small and large chunks (a 1 MiB BLAKE3 chunk is hashed in lanes of 256 chunks).
        for (int size : new int[] {65536, 1 << 20})
        for (Compression c : List.of(Compression.ZSTD, Compression.LZ4_BLOCK, Compression.NONE)) {
            Random r = new Random(3);
            var blob = SyntheticImage.uniformBlob(r, 4, size, c, DigestAlgorithm.BLAKE3);
            SyntheticImage.Written w = SyntheticImage.write(tmp.resolve(c.name() + size), List.of(blob));
            ChunkInfo victim = w.chunks().get(0).get(2);
            byte[] blobBytes = Files.readAllBytes(w.blobPath(0));
            blobBytes[(int) (victim.compressedOffset() + victim.compressedSize() / 2)] ^= 0x20;
            Files.write(w.blobPath(0), blobBytes);

            try (FlatDevice dev = FlatDevice.open(w.bootstrap(), new LocalBlobDirectory(w.blobDir()), FlatDeviceOptions.defaults())) {
                long base = w.blobOffsets().get(0);
                long bad = base + victim.uncompressedOffset();
                for (int attempt = 0; attempt < 2; attempt++) {
                    ChunkCorruptedException e = assertThrows(ChunkCorruptedException.class,
                            () -> dev.read(bad + 100, ByteBuffer.allocate(10)), c.name());
                    assertTrue(e.getMessage().contains(w.blobIds().get(0)) && e.getMessage().contains("chunk 2"), e.getMessage());
                }
                // A read spanning into the bad chunk fails too ...
                assertThrows(ChunkCorruptedException.class, () -> dev.read(bad - 10, ByteBuffer.allocate(20)));
                // ... and everything else still reads correctly.
                for (int i : new int[] {0, 1, 3}) {
                    long at = base + w.chunks().get(0).get(i).uncompressedOffset();
                    ByteBuffer buf = ByteBuffer.allocate(size);
                    dev.read(at, buf);
                    assertArrayEquals(Arrays.copyOfRange(w.expectedDevice(), (int) at, (int) at + size), buf.array());
                }
            }
        }
    }
}
