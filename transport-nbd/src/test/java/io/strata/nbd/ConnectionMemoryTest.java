package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A connection's buffers are freed when it ends, not when a GC happens to run: the server
 * allocates almost no heap, so its GCs can be minutes apart, and bench/soak.sh saw a server's
 * memory grow by about 20 MiB a minute from connections that had closed. Here 40 clients connect,
 * read and leave one after another; the JDK's direct memory must end where it started.
 */
@Timeout(60)
class ConnectionMemoryTest {
    @TempDir
    Path tmp;

    @Test
    void closedConnectionsLeaveNoDirectMemoryBehind() throws Exception {
        BufferPoolMXBean direct = ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class).stream()
                .filter(b -> b.getName().equals("direct")).findFirst().orElseThrow();
        try (ServerFixture server = new ServerFixture(tmp, List.of())) {
            byte[] expected = Files.readAllBytes(server.fixtureExport);
            int length = Math.min(expected.length, 64 << 10);
            readOnce(server, expected, length); // warms the cache and the JDK's per-thread buffers
            awaitNoConnections(server);
            long before = direct.getMemoryUsed();
            int clients = 40;
            for (int i = 0; i < clients; i++) {
                readOnce(server, expected, length);
                awaitNoConnections(server);
            }
            long grown = direct.getMemoryUsed() - before;
            // Each connection held about 384 KiB of direct buffers (input, scratch, reply copy): 15 MiB
            // for 40 when they waited for a GC. Freed at close, nothing is left of them.
            assertTrue(grown < 1 << 20, "direct memory grew by " + grown + " bytes over " + clients + " closed connections");
        }
    }

    private static void readOnce(ServerFixture server, byte[] expected, int length) throws Exception {
        try (TestClient c = new TestClient(server.unixAddress())) {
            assertEquals(expected.length, c.go());
            c.request(NbdProtocol.CMD_READ, 1, 0, length);
            assertArrayEquals(new long[] {0, 1}, c.simpleReply());
            assertArrayEquals(Arrays.copyOf(expected, length), c.read(length).array());
        }
    }

    /**
     * The server ends a connection on its own thread after the client leaves: wait until it has, and
     * until that thread has exited. The JDK frees a thread's cached temporary direct buffers only when
     * the thread terminates, a moment after the connection counter drops: measured before that, the
     * test saw a last connection's buffers as growth (1.5 MB once, under load).
     */
    private static void awaitNoConnections(ServerFixture server) throws InterruptedException {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (server.server.metrics().snapshot().connectionsOpen() > 0 || connectionThreadsAlive()) {
            assertTrue(System.nanoTime() < deadline, "a closed connection is still open on the server after 10 s");
            Thread.sleep(5);
        }
    }

    private static boolean connectionThreadsAlive() {
        return Thread.getAllStackTraces().keySet().stream()
                .anyMatch(t -> t.getName().startsWith("nbd-conn-") && t.isAlive());
    }
}
