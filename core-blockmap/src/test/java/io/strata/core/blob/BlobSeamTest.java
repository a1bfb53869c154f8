package io.strata.core.blob;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.strata.core.chunk.ChunkCorruptedException;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the chunk store tells a blob source: every blob is opened with its chunks' compressed ranges
 * (what a remote blob fetches), and a chunk that fails its digest is discarded from its blob before
 * the read fails (what keeps a persistent cache from keeping bad bytes). The bad bytes here are a
 * real flipped byte in a real blob file; the source under it is the real local directory.
 */
class BlobSeamTest {
    @TempDir
    Path tmp;

    /** The local directory, remembering what the chunk store passed to it. */
    static final class ObservedSource implements BlobSource {
        final LocalBlobDirectory local;
        final List<ChunkRanges> opened = Collections.synchronizedList(new ArrayList<>());
        final List<long[]> discarded = Collections.synchronizedList(new ArrayList<>());

        ObservedSource(Path dir) {
            local = new LocalBlobDirectory(dir);
        }

        @Override
        public boolean exists(String blobId) {
            return local.exists(blobId);
        }

        @Override
        public Blob open(String blobId) throws IOException {
            throw new AssertionError("the chunk store must open blobs with their chunk ranges");
        }

        @Override
        public Blob open(String blobId, ChunkRanges chunks) throws IOException {
            opened.add(chunks);
            Blob blob = local.open(blobId, chunks);
            return new Blob() {
                @Override
                public String id() {
                    return blob.id();
                }

                @Override
                public long size() throws IOException {
                    return blob.size();
                }

                @Override
                public void readFully(ByteBuffer dst, long position) throws IOException {
                    blob.readFully(dst, position);
                }

                @Override
                public Optional<io.strata.core.os.OpenFile> localFile() {
                    return Optional.empty();
                }

                @Override
                public boolean discard(long position, java.nio.ByteBuffer failed) {
                    discarded.add(new long[] {position, failed.remaining()});
                    return false;
                }

                @Override
                public void close() throws IOException {
                    blob.close();
                }
            };
        }

        @Override
        public String describe() {
            return local.describe();
        }
    }

    @Test
    void blobsAreOpenedWithTheirChunkRangesAndBadChunksAreDiscarded() throws IOException {
        for (Compression c : List.of(Compression.ZSTD, Compression.NONE)) {
            Random r = new Random(5);
            var blob = SyntheticImage.uniformBlob(r, 6, 65536, c, DigestAlgorithm.BLAKE3);
            SyntheticImage.Written w = SyntheticImage.write(tmp.resolve(c.name()), List.of(blob));
            List<ChunkInfo> chunks = w.chunks().get(0);
            ChunkInfo victim = chunks.get(3);
            byte[] blobBytes = Files.readAllBytes(w.blobPath(0));
            blobBytes[(int) (victim.compressedOffset() + victim.compressedSize() / 3)] ^= 0x01;
            Files.write(w.blobPath(0), blobBytes);

            ObservedSource source = new ObservedSource(w.blobDir());
            try (FlatDevice dev = FlatDevice.open(w.bootstrap(), source, FlatDeviceOptions.defaults())) {
                assertEquals(1, source.opened.size());
                ChunkRanges ranges = source.opened.get(0);
                assertEquals(chunks.size(), ranges.count());
                for (int i = 0; i < chunks.size(); i++) {
                    assertEquals(chunks.get(i).compressedOffset(), ranges.offset(i), c + " range " + i);
                    assertEquals(chunks.get(i).compressedSize(), ranges.length(i), c + " range " + i);
                }

                long base = w.blobOffsets().get(0);
                assertThrows(ChunkCorruptedException.class,
                        () -> dev.read(base + victim.uncompressedOffset() + 7, ByteBuffer.allocate(100)));
                assertEquals(1, source.discarded.size(), c + ": one discard for the one bad chunk");
                assertArrayEquals(new long[] {victim.compressedOffset(), victim.compressedSize()}, source.discarded.get(0));

                long good = base + chunks.get(2).uncompressedOffset();
                ByteBuffer buf = ByteBuffer.allocate(65536);
                dev.read(good, buf);
                assertArrayEquals(Arrays.copyOfRange(w.expectedDevice(), (int) good, (int) good + 65536), buf.array());
                assertEquals(1, source.discarded.size(), c + ": good chunks are never discarded");
            }
        }
    }
}
