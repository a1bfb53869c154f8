package io.strata.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Whole-blob transfers (a push's uploads, whole-blob downloads) against a registry played by a raw
 * socket: one that moves bytes slowly but steadily is waited for however long that takes; one that
 * stops reading the upload, stops sending the download, or never answers an upload it took whole is
 * given up once nothing has moved for the try timeout plus the read deadline, with a message naming
 * the options. Before, a transfer had a total limit of the deadline plus 1 s per MiB, so any link
 * under 1 MiB/s failed, however steadily it moved.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class WholeTransferTest {
    private static final Duration TRY = Duration.ofSeconds(1);
    private static final Duration DEADLINE = Duration.ofSeconds(1);
    /** What a whole transfer may go without moving a byte: TRY + DEADLINE. */
    private static final String STALL_MS = "2000 ms";
    private static final String SEND_BUFFER = "jdk.httpclient.sendBufferSize";

    /**
     * The client's socket send buffer fixed at 64 KiB (the JDK's client reads this for each new
     * connection): with the kernel's autotuning up to 4 MiB, the client would hand over a whole test
     * body at once and wait for it to drain without moving, which a real slow link's smaller buffers
     * rarely make it do for long. The allowance covers that too (TransferWatch); the test stays short.
     */
    @BeforeAll
    static void smallSendBuffer() {
        System.setProperty(SEND_BUFFER, Integer.toString(64 << 10));
    }

    @AfterAll
    static void defaultSendBuffer() {
        System.clearProperty(SEND_BUFFER);
    }

    /** What the fake registry does with one request, after reading its head. */
    interface Conduct {
        void serve(InputStream in, OutputStream out, long contentLength) throws Exception;
    }

    /** Serves every connection with {@code conduct}; closing it closes the connections too. */
    private static final class RawRegistry implements AutoCloseable {
        final ServerSocket listener;
        final CountDownLatch closed = new CountDownLatch(1);

        RawRegistry(Conduct conduct) throws IOException {
            listener = new ServerSocket();
            listener.setReceiveBufferSize(32 << 10); // the client's bytes wait in the client, not in our buffers
            listener.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            Thread t = new Thread(() -> {
                while (!listener.isClosed()) {
                    try {
                        Socket s = listener.accept();
                        Thread c = new Thread(() -> serve(s, conduct), "raw-registry-conn");
                        c.setDaemon(true);
                        c.start();
                    } catch (IOException e) {
                        return;
                    }
                }
            }, "raw-registry");
            t.setDaemon(true);
            t.start();
        }

        private void serve(Socket s, Conduct conduct) {
            try (s) {
                InputStream in = s.getInputStream();
                long length = 0;
                for (String line = readLine(in); line != null && !line.isEmpty(); line = readLine(in)) {
                    if (line.toLowerCase(Locale.ROOT).startsWith("content-length:")) {
                        length = Long.parseLong(line.substring(line.indexOf(':') + 1).trim());
                    }
                }
                conduct.serve(in, s.getOutputStream(), length);
                closed.await(); // hold the connection until the test ends: the client must give up on its own
            } catch (Exception e) {
                // the client went away
            }
        }

        String registry() {
            return "127.0.0.1:" + listener.getLocalPort();
        }

        @Override
        public void close() throws IOException {
            closed.countDown();
            listener.close();
        }
    }

    private static String readLine(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (int c = in.read(); c >= 0 && c != '\n'; c = in.read()) {
            if (c != '\r') {
                b.write(c);
            }
        }
        return b.toString(StandardCharsets.ISO_8859_1);
    }

    private static void answer(OutputStream out, String statusLine, long contentLength) throws IOException {
        out.write((statusLine + "\r\nContent-Length: " + contentLength + "\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
        out.flush();
    }

    /** Reads {@code n} bytes at {@code bytesPerSecond}. */
    private static void readSlowly(InputStream in, long n, long bytesPerSecond) throws Exception {
        byte[] piece = new byte[8 << 10];
        long start = System.nanoTime();
        for (long got = 0; got < n;) {
            int r = in.read(piece, 0, (int) Math.min(piece.length, n - got));
            if (r < 0) {
                throw new IOException("upload cut short");
            }
            got += r;
            long due = start + got * 1_000_000_000L / bytesPerSecond;
            long wait = due - System.nanoTime();
            if (wait > 0) {
                TimeUnit.NANOSECONDS.sleep(wait);
            }
        }
    }

    private static RegistryClient client() {
        return new RegistryClient(RegistryOptions.defaults().withEnvironment(Map.of())
                .withRetry(new RetryPolicy(1, Duration.ofMillis(1), Duration.ofMillis(5), Duration.ofSeconds(1)))
                .withTimeouts(Duration.ofSeconds(5), TRY, DEADLINE));
    }

    /** A PUT of {@code body} as a push uploads a blob. */
    private static HttpCall.Reply<Void> upload(RegistryClient client, String registry, byte[] body) throws IOException {
        RegistryHost host = client.host(registry);
        HttpCall<Void> call = new HttpCall<>("PUT", host.resolve("/v2/test/repo/blobs/uploads/x?digest=sha256:00"),
                HttpCall::discard)
                .header("Content-Type", "application/octet-stream")
                .publisher(() -> HttpRequest.BodyPublishers.ofByteArray(body))
                .wholeTransfer()
                .noRetry();
        return client.send(host, call);
    }

    @Test
    void aSlowButSteadyUploadIsWaitedFor() throws Exception {
        // 2 MiB at 256 KiB/s: 8 s, beyond the old limit (1 s deadline + 1 s per MiB + 1 s = 4 s).
        byte[] body = new byte[2 << 20];
        try (RawRegistry registry = new RawRegistry((in, out, length) -> {
            readSlowly(in, length, 256 << 10);
            answer(out, "HTTP/1.1 201 Created", 0);
        }); RegistryClient client = client()) {
            long start = System.nanoTime();
            assertEquals(201, upload(client, registry.registry(), body).status());
            assertTrue(System.nanoTime() - start > TimeUnit.SECONDS.toNanos(4), "the upload was meant to outlast the old limit");
        }
    }

    @Test
    void anUploadTheRegistryStopsReadingIsGivenUp() throws Exception {
        byte[] body = new byte[4 << 20]; // more than the socket buffers hold
        try (RawRegistry registry = new RawRegistry((in, out, length) -> in.readNBytes(64 << 10)); RegistryClient client = client()) {
            IOException e = assertThrows(IOException.class, () -> upload(client, registry.registry(), body));
            assertTrue(e.getMessage().contains("no byte moved for " + STALL_MS + " (--registry-try-timeout + --registry-deadline)"), e.getMessage());
        }
    }

    @Test
    void anUploadTakenWholeButNeverAnsweredIsGivenUp() throws Exception {
        byte[] body = new byte[256 << 10];
        try (RawRegistry registry = new RawRegistry((in, out, length) -> in.readNBytes((int) length)); RegistryClient client = client()) {
            IOException e = assertThrows(IOException.class, () -> upload(client, registry.registry(), body));
            assertTrue(e.getMessage().contains("no answer within " + STALL_MS + " of the upload's last byte"), e.getMessage());
        }
    }

    @Test
    void aDownloadThatStopsSendingIsGivenUpAndASlowOneIsWaitedFor(@TempDir Path tmp) throws Exception {
        byte[] blob = new byte[1 << 20];
        new java.util.Random(7).nextBytes(blob);
        String digest = Digests.sha256(blob);
        try (RawRegistry stalls = new RawRegistry((in, out, length) -> {
            answer(out, "HTTP/1.1 200 OK", blob.length);
            out.write(blob, 0, blob.length / 2);
            out.flush();
        }); RegistryClient client = client()) {
            ImageReference repo = ImageReference.parse(stalls.registry() + "/test/repo:v1");
            IOException e = assertThrows(IOException.class,
                    () -> client.downloadBlob(repo, digest, blob.length, tmp.resolve("stalled")));
            assertTrue(e.getMessage().contains("no byte moved for " + STALL_MS), e.getMessage());
        }
        try (RawRegistry slow = new RawRegistry((in, out, length) -> {
            answer(out, "HTTP/1.1 200 OK", blob.length);
            for (int at = 0; at < blob.length; at += 64 << 10) {
                out.write(blob, at, 64 << 10);
                out.flush();
                Thread.sleep(300); // 213 KiB/s: 4.8 s for the MiB, past the old limit of 3 s
            }
        }); RegistryClient client = client()) {
            ImageReference repo = ImageReference.parse(slow.registry() + "/test/repo:v1");
            Path target = tmp.resolve("slow");
            client.downloadBlob(repo, digest, blob.length, target);
            assertEquals(-1, java.util.Arrays.mismatch(blob, Files.readAllBytes(target)));
        }
    }
}
