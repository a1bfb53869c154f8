package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.chunk.CacheStats;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.metrics.ErrorKind;
import io.strata.core.metrics.ExportCounters;
import io.strata.core.metrics.RequestType;
import io.strata.core.testing.SyntheticImage;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An export's own counters ({@link Export#counters}, what the Prometheus exporter reports) after
 * known traffic from a raw client: every request counted once by type, bytes as read, errors by
 * kind, one latency observation per request, nothing left in flight, the connection counted; and the
 * chunk cache's misses equal the chunks loaded.
 */
class ExportCountersTest {
    @TempDir
    Path tmp;

    @Test
    void countsEveryRequestByTypeErrorKindAndLatency() throws Exception {
        Random r = new Random(5);
        SyntheticImage.Written image = SyntheticImage.write(tmp.resolve("img"), List.of(
                SyntheticImage.uniformBlob(r, 4, 65536, Compression.ZSTD, DigestAlgorithm.BLAKE3)));
        ChunkInfo bad = image.chunks().get(0).get(3);
        byte[] blob = Files.readAllBytes(image.blobPath(0));
        blob[(int) (bad.compressedOffset() + 40)] ^= 0x11;
        Files.write(image.blobPath(0), blob);
        FlatDevice dev = FlatDevice.open(image.bootstrap(), new LocalBlobDirectory(image.blobDir()), FlatDeviceOptions.defaults());
        Export export = new Export("img", dev, "synthetic");
        ExportCounters counters = export.counters();
        long base = image.blobOffsets().get(0);
        int reads = 40;
        try (ServerFixture server = new ServerFixture(tmp, List.of(export))) {
            try (TestClient c = new TestClient(server.unixAddress())) {
                c.go("img");
                long opened = System.nanoTime() + 10_000_000_000L; // counted just after the handshake's last reply
                while (counters.connectionsOpen() != 1 && System.nanoTime() < opened) {
                    Thread.sleep(5);
                }
                assertEquals(1, counters.connectionsOpen());
                // 40 reads of 4 KiB over the first three (good) chunks: three loads, the rest hits.
                for (int i = 0; i < reads; i++) {
                    long at = base + (i % 3) * 65536L + (i % 16) * 4096L;
                    c.request(NbdProtocol.CMD_READ, i, at, 4096);
                    assertArrayEquals(new long[] {0, i}, c.simpleReply());
                    assertArrayEquals(java.util.Arrays.copyOfRange(image.expectedDevice(), (int) at, (int) at + 4096),
                            c.read(4096).array());
                }
                c.request(NbdProtocol.CMD_READ, 100, base + bad.uncompressedOffset(), 4096);
                assertArrayEquals(new long[] {NbdProtocol.EIO, 100}, c.simpleReply());
                c.request(NbdProtocol.CMD_READ, 101, dev.size(), 4096);
                assertArrayEquals(new long[] {NbdProtocol.EINVAL, 101}, c.simpleReply());
                c.request(NbdProtocol.CMD_WRITE, 102, 0, 4);
                c.write(ByteBuffer.wrap(new byte[4]));
                assertArrayEquals(new long[] {NbdProtocol.EPERM, 102}, c.simpleReply());
                c.request(NbdProtocol.CMD_FLUSH, 103, 0, 0);
                assertArrayEquals(new long[] {0, 103}, c.simpleReply());
                c.request(NbdProtocol.CMD_READ, 104, 0, 4096, 0x8000); // a flag nobody defined
                assertArrayEquals(new long[] {NbdProtocol.EINVAL, 104}, c.simpleReply());
                c.request(99, 105, 0, 4096); // no such command
                assertArrayEquals(new long[] {NbdProtocol.EINVAL, 105}, c.simpleReply());
            }
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (counters.connectionsOpen() != 0 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            // Three good chunks loaded once each, plus the corrupt one's failed load (retried by no one).
            CacheStats cache = dev.cacheStats();
            assertEquals(4, cache.misses(), cache.toString());
            assertEquals(reads - 3, cache.hits(), "every read of a cached chunk is one hit, counted once: " + cache);
            assertEquals(4, dev.loadStats().loads());
            assertEquals(1, dev.loadStats().corrupt());
            assertTrue(dev.loadStats().decompressNanos() > 0 && dev.loadStats().digestNanos() > 0, dev.loadStats().toString());
        }
        assertEquals(reads + 3, counters.requests(RequestType.READ), "reads: 40 good, one corrupt, one out of range, one bad flag");
        assertEquals(reads * 4096L, counters.bytes(RequestType.READ));
        assertEquals(1, counters.requests(RequestType.WRITE));
        assertEquals(1, counters.requests(RequestType.FLUSH));
        assertEquals(1, counters.requests(RequestType.OTHER));
        assertEquals(reads + 6, counters.requests());
        assertEquals(1, counters.errors(ErrorKind.CORRUPT_CHUNK));
        assertEquals(1, counters.errors(ErrorKind.OUT_OF_RANGE));
        assertEquals(1, counters.errors(ErrorKind.READ_ONLY));
        assertEquals(2, counters.errors(ErrorKind.INVALID_REQUEST));
        assertEquals(0, counters.errors(ErrorKind.IO));
        assertEquals(5, counters.errors());
        assertEquals(reads + 3, counters.latency(RequestType.READ).count());
        assertEquals(1, counters.latency(RequestType.FLUSH).count());
        assertTrue(counters.latency(RequestType.READ).sumNanos() > 0);
        assertEquals(0, counters.inFlight());
        assertEquals(0, counters.connectionsOpen());
        assertEquals(1, counters.connectionsTotal());
    }

    /**
     * Clients that send a batch of reads and vanish: replies whose write failed are dropped, not
     * counted as answered, by the server's counters as by the export's (they disagreed: the server's
     * were counted as each reply was staged, before the write that failed).
     */
    @Test
    void theServersCountersAgreeWithTheExportsWhenClientsVanish() throws Exception {
        try (ServerFixture server = new ServerFixture(tmp, List.of())) {
            ExportCounters counters = server.defaultExport.counters();
            for (int k = 0; k < 30; k++) {
                try (TestClient c = new TestClient(server.unixAddress())) {
                    c.go();
                    ByteBuffer batch = ByteBuffer.allocate(16 * 28);
                    for (int i = 0; i < 16; i++) {
                        batch.putInt(NbdProtocol.REQUEST_MAGIC).putShort((short) 0).putShort((short) NbdProtocol.CMD_READ)
                                .putLong(i).putLong(i * 4096L).putInt(4096);
                    }
                    c.write(batch.flip());
                } // closed at once, the replies unread
            }
            ConnectionFloodTest.await(() -> counters.connectionsOpen() == 0 && server.server.metrics().pendingRequests() == 0,
                    "every connection ended and its requests were answered or dropped");
            ServerMetrics.Snapshot n = server.server.metrics().snapshot();
            assertEquals(0, counters.connectionsOpen());
            assertEquals(0, server.server.metrics().pendingRequests(), n.toString());
            assertEquals(counters.requests(), n.requests(), "answered: " + n);
            assertEquals(counters.bytes(RequestType.READ), n.bytesRead(), n.toString());
            assertEquals(counters.errors(), n.errors(), n.toString());
        }
    }
}
