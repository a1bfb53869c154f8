package io.strata.cli;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * {@code strata ctl}'s HTTP/1.1 client for the daemon's control socket: one request per connection
 * ({@code Connection: close}), the answer read to the end. The JDK's HttpClient cannot use a unix
 * socket, and the control API's answers are small and always carry Content-Length, so a request
 * line, three headers and a read to EOF are all it takes. A daemon that does not answer within the
 * timeout fails the request (the socket is closed under the read).
 */
final class ControlClient {
    record Reply(int status, String body) {
    }

    private final Path socket;
    private final long timeoutSeconds;

    ControlClient(Path socket, long timeoutSeconds) {
        this.socket = socket;
        this.timeoutSeconds = timeoutSeconds;
    }

    Reply send(String method, String target, String jsonBody) throws IOException {
        byte[] body = jsonBody == null ? new byte[0] : jsonBody.getBytes(StandardCharsets.UTF_8);
        StringBuilder head = new StringBuilder();
        head.append(method).append(' ').append(target).append(" HTTP/1.1\r\n")
                .append("Host: localhost\r\n")
                .append("Connection: close\r\n");
        if (jsonBody != null) {
            head.append("Content-Type: application/json\r\n");
        }
        head.append("Content-Length: ").append(body.length).append("\r\n\r\n");
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "ctl-timeout");
            t.setDaemon(true);
            return t;
        });
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            try {
                ch.connect(UnixDomainSocketAddress.of(socket));
            } catch (IOException e) {
                boolean denied = e.getMessage() != null && e.getMessage().contains("Permission denied");
                throw new IOException("cannot reach the daemon on " + socket + ": " + e.getMessage() + (denied
                        ? " (the control socket is for its owner: run ctl as the daemon's user, or root)"
                        : " (is 'strata serve --control " + socket + "' running? give --control PATH)"));
            }
            timer.schedule(() -> {
                try {
                    ch.close();
                } catch (IOException ignored) {
                    // closing to end the read
                }
            }, timeoutSeconds, TimeUnit.SECONDS);
            writeAll(ch, ByteBuffer.wrap(head.toString().getBytes(StandardCharsets.US_ASCII)));
            writeAll(ch, ByteBuffer.wrap(body));
            ByteArrayOutputStream in = new ByteArrayOutputStream();
            ByteBuffer buf = ByteBuffer.allocate(16 * 1024);
            try {
                while (ch.read(buf) >= 0) {
                    in.write(buf.array(), 0, buf.position());
                    buf.clear();
                }
            } catch (java.nio.channels.AsynchronousCloseException e) {
                throw new IOException("the daemon on " + socket + " did not answer within " + timeoutSeconds + " s");
            }
            return parse(in.toByteArray());
        } finally {
            timer.shutdownNow();
        }
    }

    private static void writeAll(SocketChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /** Status line, headers (Content-Length or chunked), body. */
    static Reply parse(byte[] raw) throws IOException {
        String text = new String(raw, StandardCharsets.ISO_8859_1);
        int end = text.indexOf("\r\n\r\n");
        if (!text.startsWith("HTTP/1.") || end < 0) {
            throw new IOException("the control socket did not answer HTTP (" + raw.length + " bytes)");
        }
        String[] lines = text.substring(0, end).split("\r\n");
        String[] status = lines[0].split(" ", 3);
        int code;
        try {
            code = Integer.parseInt(status[1]);
        } catch (RuntimeException e) {
            throw new IOException("the control socket answered a bad status line: " + lines[0]);
        }
        boolean chunked = false;
        int length = -1;
        for (int i = 1; i < lines.length; i++) {
            String l = lines[i].toLowerCase(Locale.ROOT);
            if (l.startsWith("transfer-encoding:") && l.contains("chunked")) {
                chunked = true;
            } else if (l.startsWith("content-length:")) {
                length = Integer.parseInt(l.substring("content-length:".length()).strip());
            }
        }
        int start = end + 4;
        byte[] body;
        if (chunked) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            int p = start;
            for (;;) {
                int eol = text.indexOf("\r\n", p);
                int size = Integer.parseInt(text.substring(p, eol).split(";")[0].strip(), 16);
                if (size == 0) {
                    break;
                }
                out.write(raw, eol + 2, size);
                p = eol + 2 + size + 2;
            }
            body = out.toByteArray();
        } else {
            int n = length >= 0 ? Math.min(length, raw.length - start) : raw.length - start;
            body = java.util.Arrays.copyOfRange(raw, start, start + n);
        }
        return new Reply(code, new String(body, StandardCharsets.UTF_8));
    }
}
