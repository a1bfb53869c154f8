package io.strata.vhost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.device.RawImageDevice;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/**
 * A back-end serving a 1 MiB random image, for tests that drive it with {@link TestFrontEnd}s. After
 * every test, whatever the test did to it, the server must be alive and a fresh front-end session
 * must read correct bytes.
 */
abstract class BackEndFixture {
    @TempDir
    Path tmp;
    byte[] image;
    RawImageDevice device;
    VhostUserServer server;
    Path socket;

    @BeforeEach
    void start() throws IOException {
        image = new byte[1 << 20];
        new Random(3).nextBytes(image);
        Path file = tmp.resolve("disk.img");
        Files.write(file, image);
        device = RawImageDevice.open(file);
        socket = tmp.resolve("vhost.sock");
        server = new VhostUserServer(socket, device, 2);
        server.start();
    }

    @AfterEach
    void stop() throws Exception {
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            assertReads(fe, 8, 4096);
        }
        server.close();
        device.close();
    }

    /** A read of {@code len} bytes at {@code sector} completes with OK and the image's bytes. */
    void assertReads(TestFrontEnd fe, long sector, int len) {
        fe.submit(fe.request(VirtioBlk.T_IN, sector, len));
        int[] used = fe.awaitUsed(5000);
        assertNotNull(used, "no completion");
        assertEquals(0, used[0]);
        assertEquals(len + 1, used[1]);
        assertEquals(VirtioBlk.S_OK, fe.status());
        int off = (int) (sector * 512);
        assertArrayEquals(Arrays.copyOfRange(image, off, off + len), fe.data(len));
    }

    /** The session is closed by the back-end: our next request sees EOF. */
    static void assertSessionClosed(TestFrontEnd fe) {
        assertThrows(java.io.EOFException.class, () -> {
            fe.send(VhostUserProtocol.GET_FEATURES, 0, null);
            fe.reply(VhostUserProtocol.GET_FEATURES);
        });
    }

    /** Polls {@code condition} until it holds or {@code timeoutMillis} pass; fails with {@code what}. */
    static void await(BooleanSupplier condition, long timeoutMillis, java.util.function.Supplier<String> what) {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, () -> "timed out waiting for " + what.get());
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
        }
    }

    static void putDesc(long table, int i, long gpa, int len, int flags, int next) {
        long d = table + 16L * i;
        io.strata.core.buffer.NativeMemory.putLong(d, gpa);
        io.strata.core.buffer.NativeMemory.putInt(d + 8, len);
        io.strata.core.buffer.NativeMemory.putU16(d + 12, flags);
        io.strata.core.buffer.NativeMemory.putU16(d + 14, next);
    }

    /** Live queue worker threads (named "vhost-user session #N-qM"). */
    static long countWorkerThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.isAlive() && t.getName().contains("-q")).count();
    }

    /** The worker thread of queue 0 in the current session, or null. */
    static Thread queue0Worker() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.isAlive() && t.getName().endsWith("-q0"))
                .findFirst().orElse(null);
    }
}
