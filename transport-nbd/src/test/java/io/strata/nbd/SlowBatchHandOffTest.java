package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.device.BlockDevice;
import io.strata.core.device.SegmentSink;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A request that must load a chunk does not hold up the connection: its thread hands leadership to
 * another, which reads and answers the requests behind it, out of order. The device here stands in
 * for a chunk store: its first 64 KiB "need a load" (not ready) and the load blocks until the test
 * lets it go; the rest is ready at once.
 */
class SlowBatchHandOffTest {
    private static final int SIZE = 1 << 20;
    private static final int SLOW_END = 64 << 10;

    @TempDir
    Path tmp;
    GatedDevice device;
    Export export;
    NbdServer server;
    Path socket;
    byte[] content;
    ExecutorService replies = Executors.newSingleThreadExecutor();

    /** A file-backed device whose first 64 KiB block in resolve until {@link #release} opens. */
    static final class GatedDevice implements BlockDevice {
        final FileChannel file;
        final io.strata.core.os.OpenFile region;
        final CountDownLatch loadStarted = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);
        volatile boolean loadInterrupted;

        GatedDevice(Path path) throws IOException {
            file = FileChannel.open(path, StandardOpenOption.READ);
            region = new io.strata.core.os.OpenFile(file, path);
        }

        @Override
        public long size() {
            return SIZE;
        }

        @Override
        public boolean isReady(long offset, long length) {
            return offset >= SLOW_END || release.getCount() == 0;
        }

        @Override
        public void resolve(long offset, long length, SegmentSink sink) throws IOException {
            BlockDevice.checkRange(offset, length, SIZE);
            if (offset < SLOW_END && release.getCount() > 0) {
                loadStarted.countDown();
                try {
                    if (!release.await(30, TimeUnit.SECONDS)) {
                        throw new IOException("the test never released the load");
                    }
                } catch (InterruptedException e) {
                    loadInterrupted = true;
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted", e);
                }
            }
            sink.file(region, offset, length);
        }

        @Override
        public String describe() {
            return "gated test device";
        }

        @Override
        public void close() throws IOException {
            file.close();
        }
    }

    @BeforeEach
    void start() throws IOException {
        content = new byte[SIZE];
        for (int i = 0; i < SIZE; i++) {
            content[i] = (byte) (i * 31 + (i >>> 12));
        }
        Path image = tmp.resolve("image.raw");
        Files.write(image, content);
        device = new GatedDevice(image);
        ExportRegistry registry = new ExportRegistry();
        export = new Export("", device, device.describe());
        registry.add(export, true);
        server = new NbdServer(registry, NbdServer.Options.defaults().withMaxInflight(4));
        socket = tmp.resolve("nbd.sock");
        server.listenUnix(socket);
    }

    @AfterEach
    void stop() throws IOException {
        device.release.countDown();
        replies.shutdownNow();
        server.close();
        device.close();
    }

    /** Reads one simple reply with its data (all requests here are reads): {cookie, error} and the bytes. */
    private Future<Object[]> nextReply(TestClient c, int length) {
        return replies.submit(() -> {
            long[] h = c.simpleReply();
            byte[] data = h[0] == 0 ? c.read(length).array() : new byte[0];
            return new Object[] {h[1], h[0], data};
        });
    }

    /** Connects {@code c} and sends read 1, which needs a "load" and blocks until the device is released. */
    private void sendSlowRead(TestClient c) throws Exception {
        assertEquals(SIZE, c.go());
        c.request(NbdProtocol.CMD_READ, 1, 4096, 8192);
        assertTrue(device.loadStarted.await(10, TimeUnit.SECONDS), "the slow read reached the device");
    }

    /**
     * A forced disconnect (the daemon's remove --force) answers the reads already read before it
     * closes the connection, as a server stop does; it closed the socket at once, the replies lost.
     */
    @Test
    void aForcedDisconnectAnswersTheReadsInFlightFirst() throws Exception {
        ExecutorService disconnecting = Executors.newSingleThreadExecutor();
        try (TestClient c = new TestClient(UnixDomainSocketAddress.of(socket))) {
            sendSlowRead(c);
            Future<Boolean> ended = disconnecting.submit(() -> server.disconnect(export, Duration.ofSeconds(20)));
            Future<Object[]> reply = nextReply(c, 8192);
            // While the load is held nothing comes: no reply, and no end of the connection either.
            assertThrows(TimeoutException.class, () -> reply.get(500, TimeUnit.MILLISECONDS));
            device.release.countDown();
            Object[] r = reply.get(10, TimeUnit.SECONDS);
            assertEquals(1L, r[0]);
            assertEquals(0L, r[1]);
            assertArrayEquals(Arrays.copyOfRange(content, 4096, 4096 + 8192), (byte[]) r[2]);
            assertTrue(ended.get(20, TimeUnit.SECONDS), "the connection ended once its reply was out");
            assertThrows(IOException.class, () -> c.simpleReply(), "then the connection is closed");
        } finally {
            disconnecting.shutdownNow();
        }
    }

    @Test
    void readsBehindALoadingRequestAreAnsweredFirst() throws Exception {
        try (TestClient c = new TestClient(UnixDomainSocketAddress.of(socket))) {
            assertEquals(SIZE, c.go());
            c.request(NbdProtocol.CMD_READ, 1, 4096, 8192); // needs a "load": blocks
            assertTrue(device.loadStarted.await(10, TimeUnit.SECONDS), "the slow read reached the device");
            c.request(NbdProtocol.CMD_READ, 2, 500_000, 4096); // ready: must not wait for cookie 1
            c.request(NbdProtocol.CMD_READ, 3, 700_000, 16384);

            Object[] first = nextReply(c, 4096).get(10, TimeUnit.SECONDS);
            assertEquals(2L, first[0], "the ready read is answered while the other loads");
            assertEquals(0L, first[1]);
            assertArrayEquals(Arrays.copyOfRange(content, 500_000, 504_096), (byte[]) first[2]);
            Object[] second = nextReply(c, 16384).get(10, TimeUnit.SECONDS);
            assertEquals(3L, second[0]);
            assertArrayEquals(Arrays.copyOfRange(content, 700_000, 716_384), (byte[]) second[2]);

            device.release.countDown();
            Object[] last = nextReply(c, 8192).get(10, TimeUnit.SECONDS);
            assertEquals(1L, last[0], "the loading read completes once its load does");
            assertEquals(0L, last[1]);
            assertArrayEquals(Arrays.copyOfRange(content, 4096, 12288), (byte[]) last[2]);

            // The connection goes on as usual: a read of the formerly slow region, now ready.
            c.request(NbdProtocol.CMD_READ, 4, 0, 65536);
            Object[] again = nextReply(c, 65536).get(10, TimeUnit.SECONDS);
            assertEquals(4L, again[0]);
            assertArrayEquals(Arrays.copyOfRange(content, 0, 65536), (byte[]) again[2]);
        }
    }

    /**
     * A stopping server waits for a chunk load still running, without interrupting it, and answers the
     * requests it has read before it disconnects (the NBD spec: it "SHOULD wait for inflight requests to
     * be serviced prior to initiating a hard disconnect"). Before, close() interrupted the load and
     * returned at once, the caller closed the device and freed the cache memory the load wrote into (a
     * SIGSEGV in zstd, or a false digest mismatch, when a server was stopped under load), and the client
     * got the close and an error for its read.
     */
    @Test
    void stoppingWaitsForTheLoadsAndAnswersTheRequestsAlreadyRead() throws Exception {
        ExecutorService stopper = Executors.newSingleThreadExecutor();
        try (TestClient c = new TestClient(UnixDomainSocketAddress.of(socket))) {
            sendSlowRead(c);
            Future<Boolean> stopped = stopper.submit(() -> server.stop(Duration.ofSeconds(20)));
            // The stop has begun once the listener refuses new clients; only then is the load let go.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (acceptsClients() && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }
            assertFalse(acceptsClients(), "the server never stopped listening");
            assertThrows(TimeoutException.class, () -> stopped.get(500, TimeUnit.MILLISECONDS),
                    "stop() returned while a load was still running");
            assertTrue(device.release.getCount() > 0 && !device.loadInterrupted, "the load was not interrupted");
            device.release.countDown();
            Object[] reply = nextReply(c, 8192).get(10, TimeUnit.SECONDS);
            assertEquals(1L, reply[0]);
            assertEquals(0L, reply[1], "the read in flight was answered, not failed");
            assertArrayEquals(Arrays.copyOfRange(content, 4096, 12288), (byte[]) reply[2]);
            assertTrue(stopped.get(10, TimeUnit.SECONDS));
            c.assertClosedByServer();
        } finally {
            stopper.shutdownNow();
        }
    }

    private boolean acceptsClients() {
        try (java.nio.channels.SocketChannel probe = java.nio.channels.SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            return true;
        } catch (IOException refused) {
            return false;
        }
    }

    @Test
    void stoppingGivesUpAfterItsTimeoutAndSaysSo() throws Exception {
        try (TestClient c = new TestClient(UnixDomainSocketAddress.of(socket))) {
            assertEquals(SIZE, c.go());
            c.request(NbdProtocol.CMD_READ, 1, 4096, 8192);
            assertTrue(device.loadStarted.await(10, TimeUnit.SECONDS), "the slow read reached the device");
            assertFalse(server.stop(Duration.ofMillis(300)), "a load still running: the devices must not be closed");
        }
    }
}
