package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a flood of clients may cost: a burst of connects is taken whole (the listen backlog), more
 * than --max-connections are refused at once while the others go on, and idle connections hold one
 * thread each, not one per --max-inflight.
 */
@Timeout(120)
class ConnectionFloodTest {
    @TempDir
    Path tmp;
    ServerFixture server;
    final List<AutoCloseable> clients = new ArrayList<>();

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : clients) {
            c.close();
        }
        if (server != null) {
            server.assertServes();
            server.close();
        }
    }

    /**
     * 200 non-blocking connects in a row, faster than any accept loop: with the JDK's default
     * backlog of 50 most get EAGAIN (as libnbd's non-blocking connect does); all must succeed and
     * then be served.
     */
    @Test
    void aBurstOf200ConnectsIsTakenWhole() throws Exception {
        server = new ServerFixture(tmp, List.of(), NbdServer.Options.defaults());
        byte[] expected = Files.readAllBytes(server.fixtureExport);
        List<SocketChannel> raw = new ArrayList<>();
        int refused = 0;
        for (int i = 0; i < 200; i++) {
            SocketChannel ch = SocketChannel.open(java.net.StandardProtocolFamily.UNIX);
            clients.add(ch);
            ch.configureBlocking(false);
            try {
                assertTrue(ch.connect(server.unixAddress()), "a unix connect completes at once or fails");
                raw.add(ch);
            } catch (IOException e) { // EAGAIN: the backlog is full
                refused++;
            }
        }
        assertEquals(0, refused, refused + " of 200 connects refused");
        // Each connection is then served: the greeting, a GO and a read, one after the other.
        for (int i = 0; i < raw.size(); i++) {
            try (TestClient c = new TestClient(raw.get(i))) {
                assertEquals(expected.length, c.go());
                int off = (i * 4096) % (expected.length - 8192);
                c.request(NbdProtocol.CMD_READ, i, off, 8192);
                assertArrayEquals(new long[] {0, i}, c.simpleReply());
                assertArrayEquals(Arrays.copyOfRange(expected, off, off + 8192), c.read(8192).array());
            }
        }
    }

    @Test
    void connectionsBeyondTheLimitAreRefusedAndTheOthersGoOn() throws Exception {
        server = new ServerFixture(tmp, List.of(), NbdServer.Options.defaults().withMaxConnections(3));
        byte[] expected = Files.readAllBytes(server.fixtureExport);
        List<TestClient> three = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            TestClient c = new TestClient(i == 1 ? server.tcp : server.unixAddress());
            clients.add(c);
            three.add(c);
            assertEquals(expected.length, c.go());
        }
        TestClient extra = new TestClient(server.unixAddress());
        clients.add(extra);
        long start = System.nanoTime();
        extra.assertClosedByServer();
        assertTrue(System.nanoTime() - start < 5_000_000_000L, "refused at once, not left waiting");
        assertEquals(1, server.server.metrics().snapshot().refused());
        for (int i = 0; i < 3; i++) {
            TestClient c = three.get(i);
            c.request(NbdProtocol.CMD_READ, 100 + i, 4096 * i, 4096);
            assertArrayEquals(new long[] {0, 100 + i}, c.simpleReply());
            assertArrayEquals(Arrays.copyOfRange(expected, 4096 * i, 4096 * (i + 1)), c.read(4096).array());
        }
        // One leaves: the next client is served (after-each check).
        three.get(0).close();
        await(() -> server.server.metrics().snapshot().connectionsOpen() == 2, "the closed connection is counted out");
    }

    @Test
    void idleConnectionsHoldOneThreadEach() throws Exception {
        NbdServer.Options options = NbdServer.Options.defaults().withLoadThreads(4);
        server = new ServerFixture(tmp, List.of(), options);
        int before = threads();
        byte[] expected = Files.readAllBytes(server.fixtureExport);
        for (int i = 0; i < 100; i++) {
            TestClient c = new TestClient(server.unixAddress());
            clients.add(c);
            assertEquals(expected.length, c.go());
            // A read of the compressed blob: loads a chunk, on the shared loader pool the first time.
            c.request(NbdProtocol.CMD_READ, i, 0x200000, 4096);
            assertArrayEquals(new long[] {0, i}, c.simpleReply());
            assertArrayEquals(Arrays.copyOfRange(expected, 0x200000, 0x201000), c.read(4096).array());
        }
        int during = threads();
        // 100 connection threads, 4 loaders, a timer; the old design held 16 per connection (1600).
        assertTrue(during - before <= 100 + options.loadThreads() + 4,
                "threads went from " + before + " to " + during + " for 100 idle connections");
        for (AutoCloseable c : clients) {
            c.close();
        }
        clients.clear();
        await(() -> server.server.metrics().snapshot().connectionsOpen() == 0, "all connections closed");
        await(() -> threads() <= before + options.loadThreads() + 4, "connection threads ended");
    }

    /** Threads of this JVM, as the kernel counts them. */
    static int threads() {
        String[] tasks = new java.io.File("/proc/self/task").list();
        return tasks == null ? Thread.activeCount() : tasks.length;
    }

    static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting until " + what);
            }
            Thread.sleep(20);
        }
    }
}
