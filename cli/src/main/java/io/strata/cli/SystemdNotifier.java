package io.strata.cli;

import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * sd_notify(3) for {@code Type=notify} units (issue 11 part 4): one datagram per state change to
 * the unix socket NOTIFY_SOCKET names, a path or, with a leading '@', a name in the abstract
 * namespace. Without NOTIFY_SOCKET (not started by systemd) it does nothing. A failed send is
 * logged and otherwise ignored, as sd_notify's callers do: serving matters more than reporting.
 */
final class SystemdNotifier {
    private final String socket;

    private SystemdNotifier(String socket) {
        this.socket = socket;
    }

    static SystemdNotifier fromEnvironment(Map<String, String> env) {
        String s = env.get("NOTIFY_SOCKET");
        return new SystemdNotifier(s == null || s.isEmpty() ? null : s);
    }

    /** The service is serving: systemd starts the units ordered after it. */
    void ready(String status) {
        send("READY=1\nSTATUS=" + status);
    }

    /**
     * Start-up goes on (opening the config's exports, each up to the registry's deadline): systemd
     * is to wait {@code more} from now before its start timeout (EXTEND_TIMEOUT_USEC, systemd 236+).
     */
    void extendStart(java.time.Duration more, String status) {
        send("EXTEND_TIMEOUT_USEC=" + more.toNanos() / 1000 + "\nSTATUS=" + status);
    }

    /** A new status line for {@code systemctl status} (after a reload). */
    void status(String status) {
        send("STATUS=" + status);
    }

    boolean active() {
        return socket != null;
    }

    /** The service is shutting down (sent before it closes its listeners). */
    void stopping() {
        send("STOPPING=1");
    }

    private void send(String state) {
        if (socket == null) {
            return;
        }
        try {
            sendDatagram(socket, state.getBytes(StandardCharsets.UTF_8));
        } catch (IOException | RuntimeException | LinkageError e) {
            CommandLoggers.serve().warn("systemd: cannot notify {} of {}: {}", socket, state.lines().findFirst().orElse(""), e.getMessage());
        }
    }

    static void sendDatagram(String socket, byte[] message) throws IOException {
        byte[] address = sockaddrUn(socket);
        LibC libc = Native.libc();
        int fd = libc.socket(LibC.AF_UNIX, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw new IOException("socket(AF_UNIX, SOCK_DGRAM): errno " + Native.errno());
        }
        try {
            long sent = libc.sendto(fd, message, message.length, LibC.MSG_NOSIGNAL, address, address.length);
            if (sent != message.length) {
                throw new IOException("sendto: " + (sent < 0 ? "errno " + Native.errno() : "sent " + sent + " of " + message.length + " bytes"));
            }
        } finally {
            libc.close(fd);
        }
    }

    /**
     * struct sockaddr_un (unix(7)): sa_family AF_UNIX (host order, little-endian on the x86-64 and
     * arm64 Strata runs on), then the path with its NUL; an abstract name is a NUL and the name, no
     * terminator, its length given by the address length.
     */
    static byte[] sockaddrUn(String socket) throws IOException {
        boolean abstractName = socket.startsWith("@");
        if (!abstractName && !socket.startsWith("/")) {
            throw new IOException("NOTIFY_SOCKET is neither a path nor an @abstract name: " + socket);
        }
        byte[] path = socket.getBytes(StandardCharsets.UTF_8);
        if (path.length > 107) {
            throw new IOException("NOTIFY_SOCKET is longer than a unix socket address holds (107 bytes): " + socket);
        }
        byte[] address = new byte[2 + path.length + (abstractName ? 0 : 1)];
        address[0] = (byte) LibC.AF_UNIX;
        System.arraycopy(path, 0, address, 2, path.length);
        if (abstractName) {
            address[2] = 0;
        }
        return address;
    }
}
