package io.strata.builder.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.strata.core.image.BlobTableEntry;
import io.strata.core.image.BlobTocEntry;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.Compression;
import io.strata.core.image.RafsBlobMetaInfo;
import io.strata.core.image.RafsImage;
import io.strata.core.testing.Fixtures;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The blob writer, given the chunks of the real Nydus blob, must write that blob again: same chunk
 * data, same tar headers, blob.meta, header, digests and ToC, byte for byte, except for two
 * nydus-image bugs fixed after the fixture was made (February 2023):
 * <ul>
 *   <li>bytes 124-127 of each ToC entry were uninitialised struct padding ("\xff\xff\0\0", "0000"
 *       here); reserved zeros since commit 85bef056 "builder: fix toc entry struct alignment";</li>
 *   <li>the image.blob ToC entry's compressed offset was the end of the chunk data (0x1e7a); the
 *       start, 0, since commit 747edc95 "builder: fix invalid compressed offset in image.blob toc entry".</li>
 * </ul>
 */
class NydusBlobLayoutTest {
    @TempDir
    Path tmp;

    @Test
    void rewritesTheNydusFixtureBlob() throws Exception {
        RafsImage image = RafsImage.open(Fixtures.nydusBootstrap());
        byte[] nydus = Files.readAllBytes(Fixtures.nydusDir().resolve(Fixtures.NYDUS_BLOB_ID));
        List<ChunkInfo> chunks = image.chunks().stream().sorted(Comparator.comparingLong(ChunkInfo::index)).toList();

        Path out = tmp.resolve("blob");
        Files.createFile(out);
        FinishedBlob b;
        try (BlobWriter w = new BlobWriter(out, 0, Compression.ZSTD, 3)) {
            for (ChunkInfo c : chunks) {
                byte[] stored = Arrays.copyOfRange(nydus, (int) c.compressedOffset(), (int) (c.compressedOffset() + c.compressedSize()));
                StoredChunk s = w.append(stored, stored.length, c.isCompressed(), (int) c.uncompressedSize(), c.digest());
                assertEquals(c.compressedOffset(), s.compressedOffset());
                assertEquals(c.uncompressedOffset(), s.uncompressedOffset());
                assertEquals(c.index(), s.indexInBlob());
            }
            b = w.finish();
        }
        byte[] ours = Files.readAllBytes(out);
        byte[] expected = nydus.clone();
        int tocStart = expected.length - 512 - 4 * BlobTocEntry.SIZE;
        for (int i = 0; i < 4; i++) {
            Arrays.fill(expected, tocStart + i * BlobTocEntry.SIZE + 124, tocStart + (i + 1) * BlobTocEntry.SIZE, (byte) 0);
        }
        ByteBuffer e = ByteBuffer.wrap(expected).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        assertEquals(0x1e7a, e.getLong(tocStart + 56), "image.blob's offset as nydus-image 2.2 wrote it");
        e.putLong(tocStart + 56, 0);
        int at = Arrays.mismatch(expected, ours);
        assertEquals(-1, at, () -> "first difference at 0x" + Integer.toHexString(at) + " of " + expected.length + "/"
                + ours.length + " bytes: Nydus " + hex(expected, at) + ", Strata " + hex(ours, at));

        // The blob table entry: the same sizes and trailer locations; the ToC digest follows the ToC.
        BlobTableEntry entry = image.blobs().get(0);
        assertEquals(entry.compressedSize(), b.compressedSize());
        assertEquals(entry.uncompressedSize(), b.uncompressedSize());
        assertEquals(entry.chunkCount(), b.chunkCount());
        assertEquals(entry.features(), io.strata.builder.data.BlobTrailer.FEATURES);
        RafsBlobMetaInfo theirs = RafsBlobMetaInfo.decode(entry.metaInfo());
        RafsBlobMetaInfo mine = b.metaInfo();
        assertEquals(theirs.blobTocSize(), mine.blobTocSize());
        assertEquals(theirs.ciCompressor(), mine.ciCompressor());
        assertEquals(theirs.ciOffset(), mine.ciOffset());
        assertEquals(theirs.ciCompressedSize(), mine.ciCompressedSize());
        assertEquals(theirs.ciUncompressedSize(), mine.ciUncompressedSize());
        assertArrayEquals(sha256(nydus, nydus.length - 1024), theirs.blobTocDigest(), "Nydus: sha256 of ToC + tar header");
        assertArrayEquals(sha256(ours, ours.length - 1024), mine.blobTocDigest());
        assertArrayEquals(entry.metaInfo(), withTocDigest(theirs, mine.blobTocDigest()).encode(), "meta info round trip");
        // Strata names a blob by the sha256 of the whole file (nydus-image leaves blob.digest out of it).
        assertEquals(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(ours)), b.id());
    }

    private static String hex(byte[] b, int at) {
        int from = Math.max(0, at - 8);
        return HexFormat.of().formatHex(b, from, Math.min(b.length, at + 24));
    }

    private static byte[] sha256(byte[] data, int from) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        md.update(ByteBuffer.wrap(data, from, data.length - from));
        return md.digest();
    }

    private static RafsBlobMetaInfo withTocDigest(RafsBlobMetaInfo m, byte[] toc) {
        return new RafsBlobMetaInfo(m.blobTocSize(), m.ciCompressor(), m.ciOffset(), m.ciCompressedSize(),
                m.ciUncompressedSize(), m.blobTocDigest(), m.blobMetaDigest(), m.blobMetaSize(), m.cipherIv(), m.cipherAlgo());
    }
}
