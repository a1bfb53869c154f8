package io.strata.core.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.Fixtures;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Nydus fixture's blob trailer reads back as its bootstrap describes the blob; broken trailers are refused. */
class BlobTrailerReaderTest {
    @TempDir
    Path tmp;

    private static BlobTrailerReader.Trailer read(Path blob) throws IOException {
        try (FileChannel ch = FileChannel.open(blob, StandardOpenOption.READ)) {
            return BlobTrailerReader.read(blob, ch);
        }
    }

    @Test
    void nydusFixtureBlob() throws IOException {
        BlobTrailerReader.Trailer t = read(Fixtures.nydusDir().resolve(Fixtures.NYDUS_BLOB_ID));
        RafsImage image = RafsImage.open(Fixtures.nydusBootstrap());
        BlobTableEntry entry = image.blobs().get(0);
        assertEquals(4, t.toc().size());
        assertEquals(entry.chunkCount(), t.chunks().size());
        assertEquals(0x1e7a, t.dataSize());
        // The bootstrap lists 2 of the blob's 3 chunks; each matches its blob.meta entry (by index).
        List<ChunkInfo> listed = image.chunks().stream().sorted(Comparator.comparingLong(ChunkInfo::index)).toList();
        for (ChunkInfo c : listed) {
            BlobChunkInfoV1 m = t.chunks().get((int) c.index());
            assertEquals(c.compressedOffset(), m.compressedOffset());
            assertEquals(c.compressedSize(), m.compressedSize());
            assertEquals(c.uncompressedOffset(), m.uncompressedOffset());
            assertEquals(c.uncompressedSize(), m.uncompressedSize());
        }
    }

    @Test
    void brokenTrailers() throws IOException {
        byte[] good = Files.readAllBytes(Fixtures.nydusDir().resolve(Fixtures.NYDUS_BLOB_ID));
        int tocStart = good.length - 512 - 4 * BlobTocEntry.SIZE;
        Path p = tmp.resolve("blob");

        byte[] name = good.clone();
        name[good.length - 512] = 'x';
        Files.write(p, name);
        assertEquals("toc tar header.name", assertThrows(ImageFormatException.class, () -> read(p)).field());

        byte[] size = good.clone();
        System.arraycopy("77777777777".getBytes(java.nio.charset.StandardCharsets.US_ASCII), 0, size, good.length - 512 + 124, 11);
        Files.write(p, size);
        assertEquals("toc tar header.size", assertThrows(ImageFormatException.class, () -> read(p)).field());

        byte[] far = good.clone(); // blob.meta.header (ToC entry 2) moved past the ToC
        ByteBuffer.wrap(far).order(ByteOrder.LITTLE_ENDIAN).putLong(tocStart + 2 * BlobTocEntry.SIZE + 56, good.length);
        Files.write(p, far);
        ImageFormatException e = assertThrows(ImageFormatException.class, () -> read(p));
        assertEquals("toc[2].compressed_offset", e.field());
        assertTrue(e.getMessage().startsWith(p + ": "), e.getMessage());
    }
}
