package io.strata.vhost;

import static io.strata.vhost.VhostUserProtocol.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.buffer.NativeMemory;
import io.strata.core.device.RawImageDevice;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The back-end driven by a test front-end (memfd guest memory, eventfds): good requests, every kind
 * of bad chain and bad message. After each bad case the back-end must still serve, in the same
 * session (a bad request) or in the next one (a bad message closes only its session).
 */
class VhostUserBackEndTest extends BackEndFixture {
    @Test
    void readsGetIdFlushWriteAndUnknownTypes() throws Exception {
        for (boolean eventIdx : new boolean[] {true, false}) {
            try (TestFrontEnd fe = new TestFrontEnd(socket)) {
                fe.setUp(eventIdx);
                assertReads(fe, 0, 512);
                assertReads(fe, 1, 65536);
                assertReads(fe, 2040, 4096); // the last 4 KiB
                fe.submit(fe.request(VirtioBlk.T_GET_ID, 0, 20));
                assertEquals(21, fe.awaitUsed(5000)[1]);
                assertTrue(new String(fe.data(20)).startsWith("strata-"));
                fe.submit(fe.request(VirtioBlk.T_FLUSH, 0, 0));
                assertEquals(VirtioBlk.S_OK, fe.awaitUsed(5000)[1] == 1 ? fe.status() : -1);
                fe.submit(fe.request(VirtioBlk.T_OUT, 0, 512));
                fe.awaitUsed(5000);
                assertEquals(VirtioBlk.S_IOERR, fe.status());
                fe.submit(fe.request(77, 0, 512));
                fe.awaitUsed(5000);
                assertEquals(VirtioBlk.S_UNSUPP, fe.status());
                fe.submit(fe.request(VirtioBlk.T_IN, 2047, 1024)); // past the end
                fe.awaitUsed(5000);
                assertEquals(VirtioBlk.S_IOERR, fe.status());
                assertReads(fe, 3, 512);
            }
        }
    }

    @Test
    void indirectDescriptorsAndAHeaderSplitAcrossDescriptors() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            long table = TestFrontEnd.DATA + 0x8000;
            long hdr = TestFrontEnd.DATA;
            fe.blkHeader(hdr, VirtioBlk.T_IN, 5);
            // The indirect table: the header in two pieces (7 + 9 bytes), data, status.
            long t = fe.host(table);
            putDesc(t, 0, hdr, 7, Virtqueue.F_NEXT, 1);
            putDesc(t, 1, hdr + 7, 9, Virtqueue.F_NEXT, 2);
            putDesc(t, 2, TestFrontEnd.DATA + 0x1000, 2048, Virtqueue.F_NEXT | Virtqueue.F_WRITE, 3);
            putDesc(t, 3, TestFrontEnd.DATA + 0x800, 1, Virtqueue.F_WRITE, 0);
            fe.desc(0, table, 4 * 16, Virtqueue.F_INDIRECT, 0);
            fe.submit(0);
            int[] used = fe.awaitUsed(5000);
            assertEquals(2049, used[1]);
            assertEquals(VirtioBlk.S_OK, fe.status());
            assertArrayEquals(Arrays.copyOfRange(image, 5 * 512, 5 * 512 + 2048), fe.data(2048));
        }
    }

    @Test
    void aSecondServerCannotTakeALiveSocket() {
        IOException e = assertThrows(IOException.class, () -> new VhostUserServer(socket, device, 1));
        assertTrue(e.getMessage().contains("in use"), e.getMessage());
    }

    @Test
    void aSecondSetOwnerClosesTheSession() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.send(SET_OWNER, 0, null);
            fe.send(SET_OWNER, 0, null);
            assertSessionClosed(fe);
        }
    }

    @Test
    void queueIndexOutOfRangeClosesTheSession() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.send(SET_OWNER, 0, null);
            fe.send(SET_VRING_NUM, 0, TestFrontEnd.state(7, 8));
            assertSessionClosed(fe);
        }
    }

    @Test
    void unknownRequestsClosesTheSession() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.send(99, 0, null);
            assertSessionClosed(fe);
        }
    }

    @Test
    void malformedAndTruncatedMessages() throws Exception {
        // A payload size far over the limit.
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            ByteBuffer h = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt(GET_FEATURES).putInt(1).putInt(1 << 30).flip();
            fe.channel.write(h);
            assertSessionClosed(fe);
        }
        // A bad version.
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            ByteBuffer h = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt(GET_FEATURES).putInt(2).putInt(0).flip();
            fe.channel.write(h);
            assertSessionClosed(fe);
        }
        // A payload shorter than the request needs.
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.send(SET_FEATURES, 0, ByteBuffer.allocate(3));
            assertSessionClosed(fe);
        }
        // A message cut off in its payload, then the front-end leaves.
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            ByteBuffer h = ByteBuffer.allocate(14).order(ByteOrder.LITTLE_ENDIAN).putInt(SET_FEATURES).putInt(1).putInt(8)
                    .putShort((short) 1).flip();
            fe.channel.write(h);
        }
        // SET_MEM_TABLE with more regions than fds.
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            ByteBuffer table = ByteBuffer.allocate(8 + 64).order(ByteOrder.LITTLE_ENDIAN);
            table.putInt(2).putInt(0).putLong(0).putLong(4096).putLong(0).putLong(0).putLong(8192).putLong(4096).putLong(0).putLong(0).flip();
            fe.send(SET_MEM_TABLE, 0, table, fe.memFd);
            assertSessionClosed(fe);
        }
        // Rings outside the memory table.
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            ByteBuffer addr = ByteBuffer.allocate(40).order(ByteOrder.LITTLE_ENDIAN);
            addr.putInt(0).putInt(0).putLong(0x1000).putLong(0x2000).putLong(0x3000).putLong(0).flip();
            fe.send(SET_VRING_ADDR, 0, addr);
            assertSessionClosed(fe);
        }
    }

    @Test
    void readsAllocateNothingOnTheQueueWorker() throws Exception {
        var mx = java.lang.management.ManagementFactory.getThreadMXBean();
        io.strata.core.testing.HostTools.require(mx instanceof com.sun.management.ThreadMXBean,
                "needs HotSpot's allocation counter");
        com.sun.management.ThreadMXBean hs = (com.sun.management.ThreadMXBean) mx;
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            for (int i = 0; i < 3000; i++) { // let the JIT settle: kick, poll, chain, preadv, used ring, notify
                fe.submit(fe.request(VirtioBlk.T_IN, i % 2000, 4096));
                fe.spinUsed();
            }
            long tid = queue0Worker().getId();
            long before = hs.getThreadAllocatedBytes(tid);
            int requests = 2000;
            for (int i = 0; i < requests; i++) {
                fe.submit(fe.request(VirtioBlk.T_IN, i % 2000, 4096));
                fe.spinUsed();
            }
            long allocated = hs.getThreadAllocatedBytes(tid) - before;
            assertTrue(allocated < requests, "the worker allocated " + allocated + " bytes over " + requests + " requests");
            assertReads(fe, 5, 4096);
        }
    }

    @Test
    void reconnectingFrontEndsLeakNoThreadsMappingsOrFds() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) { // warm up: classes, the first session
            fe.setUp(true);
            assertReads(fe, 0, 4096);
        }
        // The session ends when the back-end sees the close: wait until its worker and mapping are gone.
        await(() -> countWorkerThreads() == 0 && countMaps() == 0, 5000, () -> "the first session's release");
        long fds = countFds();
        for (int i = 0; i < 10; i++) {
            try (TestFrontEnd fe = new TestFrontEnd(socket)) {
                fe.setUp(i % 2 == 0);
                assertReads(fe, i, 4096);
                assertEquals(1, countWorkerThreads(), "one worker for the one queue");
                assertEquals(1, countMaps(), "guest memory mapped once by the back-end (and once by the test)");
            }
        }
        await(() -> countWorkerThreads() == 0 && countMaps() == 0 && countFds() <= fds, 5000,
                () -> "workers " + countWorkerThreads() + ", back-end mappings " + countMaps() + ", fds " + countFds()
                        + " (before: " + fds + ")");
        await(() -> server.sessionCount() == 11, 5000, () -> "one warm-up session and ten more");
    }

    static long countFds() {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.count();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Mappings of the test's guest memfd beyond the test front-ends' own: the back-end's. */
    static long countMaps() {
        try {
            return Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(l -> l.contains("test-guest")).count()
                    - TestFrontEnd.open();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
