package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.LocalBlobDirectory;
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
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bad clients: each gets the spec's error or loses its own connection, and the server keeps serving
 * everyone else (checked after every case with a fresh, well-behaved client).
 */
class BadClientTest {
    @TempDir
    Path tmp;
    ServerFixture server;
    byte[] fixtureBytes;
    SyntheticImage.Written corrupt;
    ChunkInfo badChunk;

    @BeforeEach
    void start() throws Exception {
        // A second export with one corrupt chunk: reads touching it get EIO, nothing else breaks.
        Random r = new Random(11);
        corrupt = SyntheticImage.write(tmp.resolve("img"), List.of(
                SyntheticImage.uniformBlob(r, 4, 65536, Compression.ZSTD, DigestAlgorithm.BLAKE3)));
        badChunk = corrupt.chunks().get(0).get(1);
        byte[] blob = Files.readAllBytes(corrupt.blobPath(0));
        blob[(int) (badChunk.compressedOffset() + 40)] ^= 0x11;
        Files.write(corrupt.blobPath(0), blob);
        FlatDevice dev = FlatDevice.open(corrupt.bootstrap(), new LocalBlobDirectory(corrupt.blobDir()), FlatDeviceOptions.defaults());
        server = new ServerFixture(tmp, List.of(new Export("corrupt", dev, "one corrupt chunk")));
        fixtureBytes = Files.readAllBytes(server.fixtureExport);
    }

    @AfterEach
    void stop() throws Exception {
        assertServerStillServes();
        server.close();
    }

    /** A well-behaved client reads the whole fixture correctly. */
    void assertServerStillServes() throws IOException {
        try (TestClient c = new TestClient(server.unixAddress())) {
            assertEquals(fixtureBytes.length, c.go());
            c.request(NbdProtocol.CMD_READ, 7, 0, fixtureBytes.length);
            long[] h = c.simpleReply();
            assertEquals(0, h[0]);
            assertEquals(7, h[1]);
            assertArrayEquals(fixtureBytes, c.read(fixtureBytes.length).array());
        }
    }

    @Test
    void garbageInsteadOfTheHandshakeClosesThatConnection() throws Exception {
        try (TestClient c = new TestClient(server.unixAddress())) {
            c.read(18);
            c.write(ByteBuffer.wrap("GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes()));
            c.assertClosedByServer();
        }
    }

    @Test
    void anOptionOf4GiBIsRefusedWithoutReadingIt() throws Exception {
        try (TestClient c = new TestClient(server.unixAddress())) {
            c.greet();
            ByteBuffer h = ByteBuffer.allocate(16).putLong(NbdProtocol.IHAVEOPT).putInt(NbdProtocol.OPT_GO).putInt(0xFFFFFFFF);
            c.write(h.flip());
            Object[] reply = c.readOptionReply();
            assertEquals(NbdProtocol.REP_ERR_TOO_BIG, (int) (Integer) reply[0]);
            c.assertClosedByServer();
        }
    }

    @Test
    void unknownOptionsGetUnsupAndNegotiationContinues() throws Exception {
        try (TestClient c = new TestClient(server.unixAddress())) {
            c.greet();
            c.sendOption(42, ByteBuffer.allocate(0));
            assertEquals(NbdProtocol.REP_ERR_UNSUP, (int) (Integer) c.readOptionReply()[0]);
            c.sendOption(NbdProtocol.OPT_STARTTLS, ByteBuffer.allocate(0));
            assertEquals(NbdProtocol.REP_ERR_UNSUP, (int) (Integer) c.readOptionReply()[0]);
            c.sendOption(NbdProtocol.OPT_LIST, ByteBuffer.allocate(3)); // LIST with data is invalid
            assertEquals(NbdProtocol.REP_ERR_INVALID, (int) (Integer) c.readOptionReply()[0]);
            c.sendOption(NbdProtocol.OPT_GO, ByteBuffer.allocate(10).putInt(4).put("nope".getBytes()).putShort((short) 0).flip());
            assertEquals(NbdProtocol.REP_ERR_UNKNOWN, (int) (Integer) c.readOptionReply()[0]);
            c.sendOption(NbdProtocol.OPT_ABORT, ByteBuffer.allocate(0));
            assertEquals(NbdProtocol.REP_ACK, (int) (Integer) c.readOptionReply()[0]);
        }
    }

    /**
     * Export names NBD does not allow (over 4096 bytes, not UTF-8) are invalid, as nbdkit answers
     * them, not unknown (a bad UTF-8 name was decoded with replacement characters and looked up),
     * and an error text never echoes more than 200 characters of a name (it echoed up to 64 KiB).
     */
    @Test
    void exportNamesNbdDoesNotAllowAreInvalidAndNeverEchoedWhole() throws Exception {
        try (TestClient c = new TestClient(server.unixAddress())) {
            c.greet();
            byte[] tooLong = "a".repeat(4097).getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            c.sendOption(NbdProtocol.OPT_GO, ByteBuffer.allocate(6 + tooLong.length).putInt(tooLong.length).put(tooLong).putShort((short) 0).flip());
            assertEquals(NbdProtocol.REP_ERR_INVALID, (int) (Integer) c.readOptionReply()[0]);
            byte[] notUtf8 = {'a', (byte) 0xff, 'b'};
            c.sendOption(NbdProtocol.OPT_INFO, ByteBuffer.allocate(6 + notUtf8.length).putInt(notUtf8.length).put(notUtf8).putShort((short) 0).flip());
            assertEquals(NbdProtocol.REP_ERR_INVALID, (int) (Integer) c.readOptionReply()[0]);
            byte[] longUnknown = "b".repeat(4000).getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            c.sendOption(NbdProtocol.OPT_GO, ByteBuffer.allocate(6 + longUnknown.length).putInt(longUnknown.length).put(longUnknown).putShort((short) 0).flip());
            Object[] reply = c.readOptionReply();
            assertEquals(NbdProtocol.REP_ERR_UNKNOWN, (int) (Integer) reply[0]);
            int echoed = ((ByteBuffer) reply[1]).remaining();
            assertTrue(echoed < 300, "the error text is " + echoed + " bytes: the whole name echoed");
            c.sendOption(NbdProtocol.OPT_ABORT, ByteBuffer.allocate(0));
            assertEquals(NbdProtocol.REP_ACK, (int) (Integer) c.readOptionReply()[0]);
        }
    }

    @Test
    void readsPastTheEndZeroLengthReadsAndUnknownCommandsKeepTheConnection() throws Exception {
        try (TestClient c = new TestClient(server.unixAddress())) {
            long size = c.go();
            c.request(NbdProtocol.CMD_READ, 1, size - 100, 4096);
            assertArrayEquals(new long[] {NbdProtocol.EINVAL, 1}, c.simpleReply());
            c.request(NbdProtocol.CMD_READ, 2, size, 1);
            assertArrayEquals(new long[] {NbdProtocol.EINVAL, 2}, c.simpleReply());
            c.request(NbdProtocol.CMD_READ, 3, 4096, 0);
            assertArrayEquals(new long[] {0, 3}, c.simpleReply());
            c.request(99, 4, 0, 4096);
            assertArrayEquals(new long[] {NbdProtocol.EINVAL, 4}, c.simpleReply());
            c.request(NbdProtocol.CMD_WRITE, 5, 0, 4);
            c.write(ByteBuffer.wrap(new byte[4]));
            assertArrayEquals(new long[] {NbdProtocol.EPERM, 5}, c.simpleReply());
            c.request(NbdProtocol.CMD_TRIM, 6, 0, 4096);
            assertArrayEquals(new long[] {NbdProtocol.EPERM, 6}, c.simpleReply());
            c.request(NbdProtocol.CMD_FLUSH, 7, 0, 0);
            assertArrayEquals(new long[] {0, 7}, c.simpleReply());
            c.request(NbdProtocol.CMD_READ, 8, 4096, 512);
            assertArrayEquals(new long[] {0, 8}, c.simpleReply());
            assertArrayEquals(Arrays.copyOfRange(fixtureBytes, 4096, 4608), c.read(512).array());
        }
    }

    @Test
    void aCorruptChunkFailsOnlyItsReads() throws Exception {
        try (TestClient c = new TestClient(server.unixAddress())) {
            c.go("corrupt");
            long base = corrupt.blobOffsets().get(0);
            c.request(NbdProtocol.CMD_READ, 1, base + badChunk.uncompressedOffset(), 4096);
            assertArrayEquals(new long[] {NbdProtocol.EIO, 1}, c.simpleReply());
            ChunkInfo good = corrupt.chunks().get(0).get(2);
            long at = base + good.uncompressedOffset();
            c.request(NbdProtocol.CMD_READ, 2, at, 65536);
            assertArrayEquals(new long[] {0, 2}, c.simpleReply());
            assertArrayEquals(Arrays.copyOfRange(corrupt.expectedDevice(), (int) at, (int) at + 65536), c.read(65536).array());
        }
    }

    @Test
    void aClientThatVanishesMidReplyHurtsNobody() throws Exception {
        for (int i = 0; i < 5; i++) {
            TestClient c = new TestClient(server.unixAddress());
            long size = c.go();
            for (int k = 0; k < 8; k++) {
                c.request(NbdProtocol.CMD_READ, k, 0, (int) size);
            }
            c.read(100); // part of the first reply, then gone
            c.close();
        }
    }

    @Test
    void twoHundredConcurrentConnections() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(200);
        List<Future<Boolean>> results = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            int id = i;
            results.add(pool.submit(() -> {
                try (TestClient c = new TestClient(id % 2 == 0 ? server.unixAddress() : server.tcp)) {
                    c.go();
                    int off = (id * 4096) % (fixtureBytes.length - 8192);
                    c.request(NbdProtocol.CMD_READ, id, off, 8192);
                    long[] h = c.simpleReply();
                    return h[0] == 0 && h[1] == id && Arrays.equals(Arrays.copyOfRange(fixtureBytes, off, off + 8192), c.read(8192).array());
                }
            }));
        }
        int ok = 0;
        for (Future<Boolean> f : results) {
            ok += f.get() ? 1 : 0;
        }
        pool.shutdown();
        assertEquals(200, ok);
        assertTrue(server.server.metrics().snapshot().connectionsTotal() >= 200);
    }
}
