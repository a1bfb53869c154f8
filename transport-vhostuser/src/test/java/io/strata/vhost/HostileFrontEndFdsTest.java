package io.strata.vhost;

import static io.strata.vhost.VhostUserProtocol.FLAG_NEED_REPLY;
import static io.strata.vhost.VhostUserProtocol.GET_FEATURES;
import static io.strata.vhost.VhostUserProtocol.SET_MEM_TABLE;
import static io.strata.vhost.VhostUserProtocol.SET_VRING_CALL;
import static io.strata.vhost.VhostUserProtocol.SET_VRING_KICK;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.buffer.NativeBuffer;
import io.strata.core.buffer.NativeMemory;
import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * File descriptors a hostile front-end hands over, and a front-end that stops reading: none may leak
 * descriptors, hang or spin a queue worker, or keep a session alive past the server's stop.
 */
class HostileFrontEndFdsTest extends BackEndFixture {
    /** A message whose payload never comes: the fds that came with its header were kept, 8 a connection. */
    @Test
    void theFdsOfAMessageCutShortAreClosed() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true); // the first session's fds and threads exist before the count
        }
        await(() -> countWorkerThreads() == 0 && !server.connected(), 5000, () -> "the first session's end");
        long before = VhostUserBackEndTest.countFds();
        for (int i = 0; i < 20; i++) {
            int sessions = server.sessionCount();
            try (TestFrontEnd fe = new TestFrontEnd(socket)) {
                fe.announce = 40; // 40 bytes announced, 8 sent, then the front-end leaves
                ByteBuffer partial = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(1).putInt(0).flip();
                int[] eight = new int[8];
                java.util.Arrays.fill(eight, fe.memFd);
                fe.send(SET_MEM_TABLE, 0, partial, eight);
            }
            await(() -> server.sessionCount() > sessions && !server.connected(), 5000, () -> "the cut-off session's end");
        }
        long after = VhostUserBackEndTest.countFds();
        assertTrue(after - before < 20, "descriptors before " + before + ", after 20 messages cut short with 8 fds each: " + after);
    }

    /** A kick fd that polls POLLHUP for ever (a pipe whose writer is gone) stops its queue instead of spinning it. */
    @Test
    void aKickFdThatHangsUpStopsItsQueue() throws Exception {
        int[] pipe = new int[2];
        assertEquals(0, jnr.posix.POSIXFactory.getNativePOSIX().pipe(pipe));
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            fe.send(SET_VRING_KICK, FLAG_NEED_REPLY, TestFrontEnd.u64(0), pipe[0]);
            fe.expectAck(SET_VRING_KICK);
            Native.libc().close(pipe[0]);
            Native.libc().close(pipe[1]); // the write end gone: POLLHUP at every poll
            await(() -> queue0Worker() == null, 5000, () -> "queue 0's worker to stop");
        }
    }

    /** A blocking call eventfd at its counter's maximum: the worker's interrupt write blocked for ever, and the stop with it. */
    @Test
    void aCallFdThatWouldBlockDoesNotWedgeTheQueueOrTheStop() throws Exception {
        Path own = tmp.resolve("own.sock");
        VhostUserServer second = new VhostUserServer(own, device, 2);
        second.start();
        LibC libc = Native.libc();
        int call = libc.eventfd(0, 0); // blocking, as a front-end may pass it
        try (NativeBuffer v = NativeBuffer.allocate(8)) {
            NativeMemory.putLong(v.address(), 0xfffffffffffffffeL);
            assertEquals(8, libc.write(call, v.address(), 8));
        }
        try (TestFrontEnd fe = new TestFrontEnd(own)) {
            fe.setUp(false);
            fe.send(SET_VRING_CALL, FLAG_NEED_REPLY, TestFrontEnd.u64(0), call);
            fe.expectAck(SET_VRING_CALL);
            for (int i = 0; i < 3; i++) {
                fe.submit(fe.request(VirtioBlk.T_IN, 8L * i, 4096));
                assertNotNull(fe.awaitUsed(5000), "request " + i + " completed: the worker is not stuck signalling");
            }
        } finally {
            libc.close(call);
            assertTrue(second.stop(Duration.ofSeconds(10)), "the server stops");
        }
    }

    /** A front-end that sends requests and never reads the replies: the server's stop still ends its session. */
    @Test
    void aFrontEndThatStopsReadingRepliesIsEndedByTheStop() throws Exception {
        Path own = tmp.resolve("own.sock");
        VhostUserServer second = new VhostUserServer(own, device, 1);
        second.start();
        TestFrontEnd fe = new TestFrontEnd(own);
        java.util.concurrent.atomic.AtomicInteger sent = new java.util.concurrent.atomic.AtomicInteger();
        Thread sender = new Thread(() -> {
            try {
                for (int i = 0; i < 1_000_000; i++) {
                    fe.send(GET_FEATURES, 0, null); // replies pile up unread until the session blocks writing one
                    sent.incrementAndGet();
                }
            } catch (Exception stoppedByTheServer) {
                // expected once the session ends
            }
        }, "unread-replies");
        sender.setDaemon(true);
        sender.start();
        try {
            await(() -> second.connected(), 5000, () -> "the session");
            // The session blocks in a reply's write once the socket's buffers are full, and then the
            // sender in its own: awaited as no progress between two looks 20 ms apart.
            int[] last = {-1};
            await(() -> {
                int now = sent.get();
                boolean stuck = now > 100 && now == last[0];
                last[0] = now;
                java.util.concurrent.locks.LockSupport.parkNanos(20_000_000);
                return stuck;
            }, 30_000, () -> "the session to block writing replies (" + sent.get() + " requests sent)");
            assertTrue(second.stop(Duration.ofSeconds(10)), "the session ended within the stop's wait");
        } finally {
            fe.close();
            sender.join(10_000);
        }
    }
}
