package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Clients that attack the server's resources rather than its parser: endless options, slow
 * handshakes, flags and ranges no real client sends, replies never read, a client that vanishes
 * with replies queued. After each the server is alive and a fresh client reads correct bytes.
 */
@Timeout(60)
class HostileClientTest {
    private static final int INFLIGHT = 4;
    private static final Duration HANDSHAKE_TIMEOUT = Duration.ofSeconds(2);

    @TempDir
    Path tmp;
    ServerFixture server;
    byte[] expected;

    @BeforeEach
    void start() throws IOException {
        server = new ServerFixture(tmp, List.of(),
                NbdServer.Options.defaults().withMaxInflight(INFLIGHT).withHandshakeTimeout(HANDSHAKE_TIMEOUT));
        expected = Files.readAllBytes(server.fixtureExport);
    }

    @AfterEach
    void stop() throws Exception {
        server.assertServes();
        server.close();
    }

    /** 2^32 options cannot be sent in a test; the bound shows: after MAX_OPTIONS the server hangs up. */
    @Test
    void endlessOptionsAreCutOff() throws Exception {
        try (TestClient c = new TestClient(server.unixAddress())) {
            c.greet();
            int sent = Handshake.MAX_OPTIONS + 100;
            ByteBuffer all = ByteBuffer.allocate(sent * 16);
            for (int i = 0; i < sent; i++) {
                all.putLong(NbdProtocol.IHAVEOPT).putInt(42).putInt(0);
            }
            all.flip();
            try {
                c.write(all); // 66 KB: the socket buffers take it whole
            } catch (IOException e) {
                // the server hung up before the last ones: fine, its replies are still to read
            }
            int replies = 0;
            while (replies < Handshake.MAX_OPTIONS) {
                assertEquals(NbdProtocol.REP_ERR_UNSUP, (int) (Integer) c.readOptionReply()[0]);
                replies++;
            }
            c.assertClosedByServer();
            assertEquals(Handshake.MAX_OPTIONS, replies, "every option up to the limit is answered, none after");
        }
    }

    @Test
    void aSlowlorisHandshakeIsDropped() throws Exception {
        try (TestClient c = new TestClient(server.unixAddress())) {
            long start = System.nanoTime();
            c.read(18);
            // One byte a second: client flags, then an option header that never ends.
            Thread dripper = new Thread(() -> {
                byte[] bytes = ByteBuffer.allocate(20).putInt(3).putLong(NbdProtocol.IHAVEOPT).putInt(NbdProtocol.OPT_GO)
                        .putInt(100).array();
                try {
                    for (byte b : bytes) {
                        c.write(ByteBuffer.wrap(new byte[] {b}));
                        Thread.sleep(1000);
                    }
                } catch (IOException | InterruptedException e) {
                    // the server hung up: expected
                }
            });
            dripper.setDaemon(true);
            dripper.start();
            c.assertClosedByServer();
            long seconds = (System.nanoTime() - start) / 1_000_000_000L;
            assertTrue(seconds >= HANDSHAKE_TIMEOUT.toSeconds() - 1 && seconds <= HANDSHAKE_TIMEOUT.toSeconds() + 3,
                    "dropped after " + seconds + " s with a " + HANDSHAKE_TIMEOUT.toSeconds() + " s timeout");
            dripper.interrupt();
            dripper.join(5000);
        }
        try (TestClient silent = new TestClient(server.unixAddress())) {
            silent.assertClosedByServer(); // says nothing at all: dropped the same way
        }
    }

    @Test
    void unknownCommandFlagsAreEinvalAndTheConnectionGoesOn() throws Exception {
        try (TestClient c = new TestClient(server.unixAddress())) {
            c.go();
            c.request(NbdProtocol.CMD_READ, 1, 0, 4096, 1 << 9); // a flag no spec version defines
            assertArrayEquals(new long[] {NbdProtocol.EINVAL, 1}, c.simpleReply());
            c.request(NbdProtocol.CMD_READ, 2, 0, 4096, 1 << 2); // DF: not advertised (no NBD_FLAG_SEND_DF)
            assertArrayEquals(new long[] {NbdProtocol.EINVAL, 2}, c.simpleReply());
            c.request(NbdProtocol.CMD_FLUSH, 3, 0, 0, 1); // FUA applies to writes only
            assertArrayEquals(new long[] {NbdProtocol.EINVAL, 3}, c.simpleReply());
            c.request(NbdProtocol.CMD_CACHE, 4, 0x200000, 4096, 0x8000);
            assertArrayEquals(new long[] {NbdProtocol.EINVAL, 4}, c.simpleReply());
            c.request(NbdProtocol.CMD_READ, 5, 4096, 4096, 0);
            assertArrayEquals(new long[] {0, 5}, c.simpleReply());
            assertArrayEquals(Arrays.copyOfRange(expected, 4096, 8192), c.read(4096).array());
        }
    }

    @Test
    void rangesThatWrapPast2To64AreEinval() throws Exception {
        try (TestClient c = new TestClient(server.unixAddress())) {
            c.go();
            long[] offsets = {-4096L, Long.MIN_VALUE, Long.MAX_VALUE, 0xFFFFFFFFFFFFFFFFL};
            int cookie = 1;
            for (long off : offsets) {
                for (int type : new int[] {NbdProtocol.CMD_READ, NbdProtocol.CMD_CACHE}) {
                    c.request(type, cookie, off, 0x10000, 0);
                    assertArrayEquals(new long[] {NbdProtocol.EINVAL, cookie}, c.simpleReply(), "offset " + Long.toHexString(off));
                    cookie++;
                }
            }
            c.request(NbdProtocol.CMD_READ, 99, expected.length - 512, 512, 0);
            assertArrayEquals(new long[] {0, 99}, c.simpleReply());
            assertArrayEquals(Arrays.copyOfRange(expected, expected.length - 512, expected.length), c.read(512).array());
        }
    }

    /**
     * Requests sent and replies never read: the server stops reading requests once a batch of
     * replies cannot be written, so what it holds stays bounded (requests it has read and not
     * answered; direct memory) however long the client keeps sending.
     */
    @Test
    void aClientThatNeverReadsRepliesCostsABoundedAmount() throws Exception {
        BufferPoolMXBean direct = ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class).stream()
                .filter(b -> b.getName().equals("direct")).findFirst().orElseThrow();
        try (TestClient c = new TestClient(server.unixAddress())) {
            c.go();
            long directBefore = direct.getMemoryUsed();
            ByteBuffer req = ByteBuffer.allocate(28);
            long sent = 0;
            long stalledSince = 0;
            // Whole-device reads (2 MiB each) until the socket takes nothing more for a second.
            while (stalledSince == 0 || System.nanoTime() - stalledSince < 1_000_000_000L) {
                if (!req.hasRemaining() || req.position() == 0) {
                    req.clear().putInt(NbdProtocol.REQUEST_MAGIC).putShort((short) 0).putShort((short) NbdProtocol.CMD_READ)
                            .putLong(sent).putLong(0).putInt(expected.length).flip();
                }
                if (c.writeNow(req) == 0) {
                    if (stalledSince == 0) {
                        stalledSince = System.nanoTime();
                    }
                    Thread.sleep(10);
                } else {
                    stalledSince = 0;
                    if (!req.hasRemaining()) {
                        sent++;
                        req.clear();
                    }
                }
                assertTrue(sent < 1_000_000, "the server kept reading requests whose replies nobody reads");
            }
            long pending = server.server.metrics().pendingRequests();
            long grown = direct.getMemoryUsed() - directBefore;
            // Held by the server: at most the batch being written and INFLIGHT batches loading.
            assertTrue(pending <= (INFLIGHT + 1) * Connection.MAX_BATCH, pending + " requests pending after " + sent + " sent");
            assertTrue(grown < 8 << 20, "direct memory grew by " + grown + " bytes");
            assertTrue(sent > 10, "the client sent " + sent + " requests before the server stopped reading");
        }
        ConnectionFloodTest.await(() -> server.server.metrics().snapshot().connectionsOpen() == 0, "the connection is closed");
        assertEquals(0, server.server.metrics().pendingRequests(), "the pending requests were dropped");
    }

    /** 64 MiB of replies requested, a few bytes read, gone: the server frees it all and goes on. */
    @Test
    void aClientThatVanishesWith64MiBQueuedIsForgotten() throws Exception {
        int before = ConnectionFloodTest.threads();
        for (int round = 0; round < 3; round++) {
            TestClient c = new TestClient(server.unixAddress());
            c.go();
            int requests = (64 << 20) / expected.length + 1;
            for (int i = 0; i < requests; i++) {
                c.request(NbdProtocol.CMD_READ, i, 0, expected.length, 0);
            }
            c.read(100);
            c.close();
        }
        ConnectionFloodTest.await(() -> server.server.metrics().snapshot().connectionsOpen() == 0, "the connections are closed");
        ConnectionFloodTest.await(() -> server.server.metrics().pendingRequests() == 0, "their requests are dropped");
        ConnectionFloodTest.await(() -> ConnectionFloodTest.threads() <= before + 1, "their threads have ended");
    }
}
