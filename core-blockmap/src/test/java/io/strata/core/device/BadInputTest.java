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
        for (Compression c : List.of(Compression.ZSTD, Compression.LZ4_BLOCK, Compression.NONE)) {
            Random r = new Random(3);
            var blob = SyntheticImage.uniformBlob(r, 4, 65536, c, DigestAlgorithm.BLAKE3);
            SyntheticImage.Written w = SyntheticImage.write(tmp.resolve(c.name()), List.of(blob));
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
                    ByteBuffer buf = ByteBuffer.allocate(65536);
                    dev.read(at, buf);
                    assertArrayEquals(Arrays.copyOfRange(w.expectedDevice(), (int) at, (int) at + 65536), buf.array());
                }
            }
        }
    }
}
