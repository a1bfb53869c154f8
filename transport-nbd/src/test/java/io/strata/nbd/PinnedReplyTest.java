package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.Blob;
import io.strata.core.blob.BlobSource;
import io.strata.core.blob.ChunkRanges;
import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.os.OpenFile;
import io.strata.core.testing.SyntheticImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A read is resolved once: its chunks are loaded, checked and pinned before its reply starts, and
 * the reply carries those bytes. Here the first read of a batch needs chunk 0, and the reads behind
 * it in the same batch load five more chunks through a cache of four, which evicts every chunk not
 * pinned. The blob (a source this test controls) returns chunk 0's bytes correctly once and wrong
 * ever after, as a registry or proxy gone bad would. Resolving the read again to send it (what the
 * server did before: check, release, reload under the write) fetched the wrong bytes after the
 * reply header was out, and the connection died mid-reply. Pinned, the reply is right, every
 * request is answered, and chunk 0 was read from the blob once.
 */
@Timeout(60)
class PinnedReplyTest {
    private static final int CHUNK = 64 << 10;

    @TempDir
    Path tmp;

    @Test
    void aChunkEvictedBetweenCheckAndSendIsSentAsChecked() throws Exception {
        Random random = new Random(21);
        SyntheticImage.Written image = SyntheticImage.write(tmp.resolve("img"), List.of(
                SyntheticImage.uniformBlob(random, 8, CHUNK, Compression.ZSTD, DigestAlgorithm.BLAKE3)));
        ChunkInfo first = image.chunks().get(0).get(0);
        GoesBadAfterOneRead source = new GoesBadAfterOneRead(image.blobDir(), first.compressedOffset());
        // The smallest cache: 4 slots of 64 KiB.
        FlatDevice device = FlatDevice.open(image.bootstrap(), source, FlatDeviceOptions.defaults().withCacheBytes(4L * CHUNK));
        long base = image.blobOffsets().get(0);
        int reads = 6;
        try (ServerFixture server = new ServerFixture(tmp, List.of(new Export("img", device, "synthetic")))) {
            try (TestClient c = new TestClient(server.unixAddress())) {
                c.go("img");
                // One write, so that the server reads all six as one batch: chunk 0 first, then chunks 1-5.
                ByteBuffer batch = ByteBuffer.allocate(reads * NbdRequest.SIZE);
                for (int i = 0; i < reads; i++) {
                    batch.putInt(NbdProtocol.REQUEST_MAGIC).putShort((short) 0).putShort((short) NbdProtocol.CMD_READ)
                            .putLong(i).putLong(base + (long) i * CHUNK + 4096).putInt(4096);
                }
                c.write(batch.flip());
                for (int n = 0; n < reads; n++) {
                    long[] reply = c.simpleReply();
                    assertEquals(0, reply[0], "request " + reply[1] + " failed");
                    int i = (int) reply[1];
                    long at = base + (long) i * CHUNK + 4096;
                    assertArrayEquals(Arrays.copyOfRange(image.expectedDevice(), (int) at, (int) at + 4096), c.read(4096).array(),
                            "read of chunk " + i);
                }
            }
        }
        assertEquals(1, source.readsOfFirstChunk.get(), "chunk 0 was loaded once: its reply was sent from the pinned chunk");
        assertTrue(device.cacheStats().evictions() > 0, "the reads behind it did evict: " + device.cacheStats());
    }

    /** A local blob directory whose chunk at {@code badOffset} reads right the first time, wrong after. */
    private static final class GoesBadAfterOneRead implements BlobSource {
        final LocalBlobDirectory local;
        final long badOffset;
        final AtomicInteger readsOfFirstChunk = new AtomicInteger();

        GoesBadAfterOneRead(Path dir, long badOffset) {
            this.local = new LocalBlobDirectory(dir);
            this.badOffset = badOffset;
        }

        @Override
        public boolean exists(String blobId) {
            return local.exists(blobId);
        }

        @Override
        public Blob open(String blobId) throws IOException {
            Blob blob = local.open(blobId);
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
                    int at = dst.position();
                    blob.readFully(dst, position);
                    if (position == badOffset && readsOfFirstChunk.incrementAndGet() > 1) {
                        dst.put(at + 40, (byte) (dst.get(at + 40) ^ 0x5a));
                    }
                }

                @Override
                public Optional<OpenFile> localFile() {
                    return Optional.empty(); // every chunk goes through the cache
                }

                @Override
                public void close() throws IOException {
                    blob.close();
                }
            };
        }

        @Override
        public Blob open(String blobId, ChunkRanges chunks) throws IOException {
            return open(blobId);
        }

        @Override
        public String describe() {
            return "a blob that goes bad";
        }
    }
}
