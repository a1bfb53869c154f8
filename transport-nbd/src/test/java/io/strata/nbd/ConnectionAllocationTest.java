package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A connection's thread allocates nothing per request once warm: reads of cached chunks and of the
 * bootstrap, each counted in the export's metrics (type, bytes, latency), measured with the JVM's
 * per-thread allocation counter.
 */
class ConnectionAllocationTest {
    @TempDir
    Path tmp;

    private static java.util.Set<Thread> connectionThreads() {
        java.util.Set<Thread> found = new java.util.HashSet<>();
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().startsWith("nbd-conn-") && t.isAlive()) {
                found.add(t);
            }
        }
        return found;
    }

    @Test
    void cachedReadsAllocateNothingOnTheConnectionThread() throws Exception {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (ServerFixture server = new ServerFixture(tmp, List.of())) {
            io.strata.core.metrics.ExportCounters counters = server.defaultExport.counters();
            byte[] expected = Files.readAllBytes(server.fixtureExport);
            // This connection's thread: the nbd-conn- thread that was not there before it (other tests' may linger).
            java.util.Set<Thread> earlier = connectionThreads();
            try (TestClient c = new TestClient(server.unixAddress())) {
                c.go();
                Thread conn = null;
                long deadline = System.nanoTime() + 10_000_000_000L;
                while (conn == null && System.nanoTime() < deadline) {
                    for (Thread t : connectionThreads()) {
                        if (!earlier.contains(t)) {
                            conn = t;
                        }
                    }
                    Thread.sleep(1);
                }
                assertNotNull(conn);
                long[] offsets = {0, 4096, 512 * 4096L, 514 * 4096L, 519 * 4096L};
                for (int round = 0; round < 2; round++) {
                    long before = mx.getThreadAllocatedBytes(conn.getId());
                    int n = round == 0 ? 500 : 5000;
                    for (int i = 0; i < n; i++) {
                        long at = offsets[i % offsets.length];
                        c.request(NbdProtocol.CMD_READ, i, at, 4096);
                        c.simpleReply();
                        byte[] got = c.read(4096).array();
                        if (i % 500 == 0) {
                            assertArrayEquals(java.util.Arrays.copyOfRange(expected, (int) at, (int) at + 4096), got);
                        }
                    }
                    long after = mx.getThreadAllocatedBytes(conn.getId());
                    if (round == 1) {
                        // One object per request would be 16+ bytes each, 80 KB here; a few stray bytes are the JVM's.
                        assertTrue(after - before < 4096, (after - before) + " bytes allocated for " + n + " requests");
                    }
                }
                // A batch is counted just after its replies are written: the client may see the last
                // reply a moment before the count, so wait for it (with a deadline).
                long counted = System.nanoTime() + 10_000_000_000L;
                while (counters.requests(io.strata.core.metrics.RequestType.READ) < 5500 && System.nanoTime() < counted) {
                    Thread.sleep(1);
                }
                assertEquals(5500, counters.requests(io.strata.core.metrics.RequestType.READ), "every read counted");
                assertTrue(conn.isAlive(), "measured the connection's own thread");
            }
        }
    }
}
