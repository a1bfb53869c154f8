package io.strata.vhost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.buffer.NativeMemory;
import io.strata.core.device.BlockDevice;
import io.strata.core.device.RawImageDevice;
import io.strata.core.device.SegmentSink;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A read that waits for a chunk load does not hold up the reads queued behind it on the same queue
 * (issue 10 item 3): the queue worker hands it to a loader and serves the next request, whose
 * completion then goes out first. The device here is the test's: reads of its first 64 KiB wait
 * for a gate (a load from a slow registry) and say so through {@code isReady}; the rest is ready.
 * Before the hand-off, the cached read waited the whole load behind the slow one.
 */
@Timeout(60)
class MissHandOffTest {
    private static final int SLOW_END = 64 << 10;

    @TempDir
    Path tmp;

    /**
     * A raw image whose first 64 KiB read only once {@link #release} opens, from when the gate is
     * {@link #armed}: the server reads block 0 for its serial when it is made, and that read must not
     * wait (it waited for the gate's 30 s timeout, and the server took the fallback serial).
     */
    static final class GatedDevice implements BlockDevice {
        final RawImageDevice inner;
        volatile boolean armed;
        final CountDownLatch release = new CountDownLatch(1);
        final CountDownLatch loadStarted = new CountDownLatch(1);

        GatedDevice(RawImageDevice inner) {
            this.inner = inner;
        }

        @Override
        public long size() {
            return inner.size();
        }

        @Override
        public boolean isReady(long offset, long length) {
            return !armed || offset >= SLOW_END || release.getCount() == 0;
        }

        @Override
        public void resolve(long offset, long length, SegmentSink sink) throws IOException {
            if (armed && offset < SLOW_END) {
                loadStarted.countDown();
                try {
                    if (!release.await(30, TimeUnit.SECONDS)) {
                        throw new IOException("the test never opened the gate");
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted", e);
                }
            }
            inner.resolve(offset, length, sink);
        }

        @Override
        public String describe() {
            return "gated " + inner.describe();
        }

        @Override
        public void close() throws IOException {
            inner.close();
        }
    }

    @Test
    void aSlowLoadDoesNotDelayACachedReadBehindIt() throws Exception {
        byte[] image = randomImage(11);
        GatedDevice device = gatedDevice(image);
        Path socket = tmp.resolve("vhost.sock");
        VhostUserServer server = startArmed(socket, device);
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            slowReadThenReadyRead(fe, image);

            device.release.countDown();
            int[] second = fe.awaitUsed(10_000);
            assertNotNull(second, "the slow read never completed");
            assertEquals(0, second[0]);
            assertEquals(4097, second[1]);
            assertEquals(VirtioBlk.S_OK, NativeMemory.getByte(fe.host(SLOW_STATUS)));
            assertArrayEquals(Arrays.copyOfRange(image, 0, 4096), bytes(fe, SLOW_DATA, 4096));
            // The worker adds a pass's completions to the counter after publishing them (one atomic add
            // per pass, not per request), so the front-end may see a completion a moment before its count.
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (server.requestsServed(0) != 2 && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }
            assertEquals(2, server.requestsServed(0));
        } finally {
            device.release.countDown();
            server.close();
            device.close();
        }
    }

    /**
     * A front-end that goes away (or a server stopped, or an export removed) while a read waits for
     * its load: the session's memory and the device stay until the load has ended. Before, the queue
     * worker gave up after 55 s and the server's close after 10 s, and a load that ended later (a
     * registry read has 60 s by default) wrote into unmapped guest memory or freed cache memory: a
     * SIGSEGV, or silent writes into a reconnected guest's memory mapped at the same address.
     */
    @Test
    void theSessionAndDeviceOutliveALoadStillRunning() throws Exception {
        GatedDevice device = gatedDevice(randomImage(12));
        Path socket = tmp.resolve("vhost.sock");
        VhostUserServer server = startArmed(socket, device);
        ExecutorService waiter = Executors.newSingleThreadExecutor();
        try {
            try (TestFrontEnd fe = new TestFrontEnd(socket)) {
                fe.setUp(true);
                request(fe, 0, TestFrontEnd.DATA, 0, TestFrontEnd.DATA + 0x1000, TestFrontEnd.DATA + 0x800);
                fe.submit(0);
                assertTrue(device.loadStarted.await(10, TimeUnit.SECONDS), "the read reached the device");
            } // the front-end disconnects with the read in flight
            assertFalse(server.stop(Duration.ofMillis(500)), "a load still running: the device must not be closed");
            Future<?> stopped = waiter.submit(() -> {
                server.awaitStopped();
                return null;
            });
            assertThrows(TimeoutException.class, () -> stopped.get(300, TimeUnit.MILLISECONDS), "stopped while the load still ran");
            device.release.countDown();
            stopped.get(10, TimeUnit.SECONDS); // the load ended: the session released its memory, the loaders ended
        } finally {
            device.release.countDown();
            waiter.shutdownNow();
            server.close();
            device.close();
        }
    }

    /**
     * A back-end that dies with a slow read in flight and a later read already completed: QEMU rewinds
     * the queue to its used index (1, the completed read) and the next back-end gets the inflight
     * region, where only the slow read is marked. Reading the ring again from the used index served
     * the completed read a second time and the slow one never (the guest waited for it for ever). The
     * crash is reproduced by restoring the used ring and the region as they were at that moment
     * (after the session served both), then resuming the queue as QEMU does: SET_VRING_BASE with the
     * used index.
     */
    @Test
    void aQueueResumedAfterOutOfOrderCompletionsServesWhatWasInFlightOnce() throws Exception {
        byte[] image = randomImage(13);
        GatedDevice device = gatedDevice(image);
        Path socket = tmp.resolve("vhost.sock");
        VhostUserServer server = startArmed(socket, device);
        long regionSize = InflightRegion.strideOf(TestFrontEnd.QSIZE);
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            int fd = RingStateChangeTest.getInflightFd(fe);
            long region = io.strata.core.os.Native.libc().mmap(0, regionSize,
                    io.strata.core.os.LibC.PROT_READ | io.strata.core.os.LibC.PROT_WRITE, io.strata.core.os.LibC.MAP_SHARED, fd, 0);
            try {
                slowReadThenReadyRead(fe, image);
                // The moment of the crash: the used ring holds head 3; the region marks head 0.
                long usedRing = fe.host(TestFrontEnd.USED);
                long usedBytes = 4 + 8L * TestFrontEnd.QSIZE;
                byte[] usedAtCrash = copy(usedRing, usedBytes);
                byte[] regionAtCrash = copy(region, regionSize);
                assertEquals(1, NativeMemory.getByte(region + InflightRegion.QUEUE_HEADER + InflightRegion.D_INFLIGHT),
                        "the slow read is marked in flight");

                device.release.countDown();
                assertNotNull(fe.awaitUsed(10_000), "the slow read never completed");
                fe.stopQueue();
                restore(usedRing, usedAtCrash);
                restore(region, regionAtCrash);
                NativeMemory.putByte(fe.host(SLOW_STATUS), (byte) 0x7f);
                NativeMemory.zero(fe.host(SLOW_DATA), 4096);
                fe.expectUsedFrom(1);
                fe.startQueue(1);

                assertNextCompleted(fe, 0, image, 0, SLOW_DATA, SLOW_STATUS,
                        "the read left in flight is served, not the completed one again");
                // The ring is read on after both: the next request is the next used entry.
                request(fe, 5, TestFrontEnd.DATA + 0x200, 512, FAST_DATA, FAST_STATUS);
                fe.submit(5);
                assertNextCompleted(fe, 5, image, 512, FAST_DATA, FAST_STATUS,
                        "nothing but the new request was served after the resumed one");
                assertEquals(3, fe.usedIdx());
            } finally {
                io.strata.core.os.Native.libc().munmap(region, regionSize);
                io.strata.core.os.Native.libc().close(fd);
            }
        } finally {
            device.release.countDown();
            server.close();
            device.close();
        }
    }

    private static final long SLOW_DATA = TestFrontEnd.DATA + 0x1000;
    private static final long FAST_DATA = TestFrontEnd.DATA + 0x3000;
    private static final long SLOW_STATUS = TestFrontEnd.DATA + 0x800;
    private static final long FAST_STATUS = TestFrontEnd.DATA + 0x900;

    /**
     * Head 0: 4 KiB at sector 0 (behind the gate); head 3: 4 KiB at sector 1024 (ready). Submits both
     * and checks that the ready read completes first, with the image's bytes.
     */
    private static void slowReadThenReadyRead(TestFrontEnd fe, byte[] image) {
        request(fe, 0, TestFrontEnd.DATA, 0, SLOW_DATA, SLOW_STATUS);
        request(fe, 3, TestFrontEnd.DATA + 0x100, 1024, FAST_DATA, FAST_STATUS);
        fe.submit(0);
        fe.submit(3);
        assertNextCompleted(fe, 3, image, 1024, FAST_DATA, FAST_STATUS, "the ready read completes first");
    }

    /** The next used entry is {@code head}'s, completed OK with the image's 4 KiB at {@code sector}. */
    private static void assertNextCompleted(TestFrontEnd fe, int head, byte[] image, int sector, long data, long status,
            String what) {
        int[] used = fe.awaitUsed(10_000);
        assertNotNull(used, "no completion in 10 s: " + what);
        assertEquals(head, used[0], what);
        assertEquals(VirtioBlk.S_OK, NativeMemory.getByte(fe.host(status)));
        assertArrayEquals(Arrays.copyOfRange(image, sector * 512, sector * 512 + 4096), bytes(fe, data, 4096));
    }

    private static byte[] copy(long address, long length) {
        byte[] out = new byte[(int) length];
        for (int i = 0; i < out.length; i++) {
            out[i] = NativeMemory.getByte(address + i);
        }
        return out;
    }

    private static void restore(long address, byte[] bytes) {
        for (int i = 0; i < bytes.length; i++) {
            NativeMemory.putByte(address + i, bytes[i]);
        }
    }

    private static byte[] randomImage(long seed) {
        byte[] image = new byte[1 << 20];
        new Random(seed).nextBytes(image);
        return image;
    }

    private GatedDevice gatedDevice(byte[] image) throws IOException {
        return new GatedDevice(RawImageDevice.open(Files.write(tmp.resolve("disk.img"), image)));
    }

    /** A server on {@code socket} for {@code device}, made before the gate is armed (see {@link GatedDevice}). */
    private static VhostUserServer startArmed(Path socket, GatedDevice device) throws IOException {
        VhostUserServer server = new VhostUserServer(socket, device, 1);
        device.armed = true;
        server.start();
        return server;
    }

    /** A 3-descriptor read request at descriptors head..head+2. */
    private static void request(TestFrontEnd fe, int head, long header, long sector, long data, long status) {
        fe.blkHeader(header, VirtioBlk.T_IN, sector);
        NativeMemory.putByte(fe.host(status), (byte) 0x7f);
        fe.desc(head, header, 16, Virtqueue.F_NEXT, head + 1);
        fe.desc(head + 1, data, 4096, Virtqueue.F_NEXT | Virtqueue.F_WRITE, head + 2);
        fe.desc(head + 2, status, 1, Virtqueue.F_WRITE, 0);
    }

    private static byte[] bytes(TestFrontEnd fe, long gpa, int len) {
        byte[] out = new byte[len];
        for (int i = 0; i < len; i++) {
            out[i] = NativeMemory.getByte(fe.host(gpa) + i);
        }
        return out;
    }
}
