package io.strata.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.function.Consumer;

/**
 * Every byte of one connection's transmission phase passes here: a non-blocking socket and a
 * selector of its own, used only by the connection's thread. The selector lets that one thread wait
 * for "the socket is readable" or "a chunk load finished" ({@link #wakeup}, called by the shared load
 * pool) at once, so a connection needs no second thread, and loader threads never write to a socket
 * (a client that stops reading would otherwise pin them).
 *
 * <p>On a TLS connection the bytes pass the connection's {@link TlsChannel} (which reads and writes
 * the socket through {@link TlsNetwork}), and file regions cannot go by sendfile ({@link #zeroCopy}).
 */
final class ConnectionIo implements AutoCloseable {
    private static final Consumer<SelectionKey> IGNORE = k -> { };

    private final SocketChannel socket;
    /** The TLS session STARTTLS set up, or null for plaintext. */
    private final TlsChannel tls;
    private final Selector selector;
    private final SelectionKey key;
    /** The interest set last given to the key; changed only when a wait needs another one. */
    private int interest;
    /**
     * The last read left room in its buffer, so the socket had nothing more then (plaintext only: a
     * TLS read can stop at a record boundary with more bytes buffered). Until the next wait, another
     * read would most likely find nothing, and that read is a system call per wake-up.
     */
    private boolean drained;

    ConnectionIo(SocketChannel socket) throws IOException {
        this(socket, null);
    }

    ConnectionIo(SocketChannel socket, TlsChannel tls) throws IOException {
        this.socket = socket;
        this.tls = tls;
        if (tls != null) {
            tls.useNetwork(new TlsNetwork());
        }
        socket.configureBlocking(false);
        this.selector = Selector.open();
        try {
            this.key = socket.register(selector, 0);
        } catch (IOException | RuntimeException e) {
            selector.close();
            throw e;
        }
    }

    /** Reads what is there without waiting: bytes read, 0 if none, -1 at end of stream. */
    int readNow(ByteBuffer b) throws IOException {
        if (tls != null) {
            return tls.read(b);
        }
        int n = socket.read(b);
        drained = n >= 0 && b.hasRemaining();
        return n;
    }

    /**
     * Whether a read before the next wait is worth its system call: false when the last read drained
     * the socket. A connection that has answered what it read then waits at once (the selector
     * reports bytes that came meanwhile without sleeping) instead of a read that returns nothing
     * before every wait: for 4 KiB reads at queue depth 32 that was a third of the reads.
     */
    boolean worthReading() {
        return !drained;
    }

    /** The next read is worth its system call although the last one drained the socket: time has passed since (a batch wait). */
    void expectBytes() {
        drained = false;
    }

    /** Fills {@code b}, waiting for the peer as needed (payloads that follow a request header). */
    void readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            int n = readNow(b);
            if (n < 0) {
                throw new EOFException("peer closed the connection");
            }
            if (n == 0) {
                await(SelectionKey.OP_READ);
            }
        }
    }

    /** Writes all of {@code b}; when the peer does not read, this thread waits (and reads nothing meanwhile). */
    void write(ByteBuffer b) throws IOException {
        if (tls != null) {
            tls.write(b);
        } else {
            writeSocket(b);
        }
    }

    private void writeSocket(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            if (socket.write(b) == 0) {
                await(SelectionKey.OP_WRITE);
            }
        }
    }

    /** False under TLS: every byte must pass the engine, so callers copy file regions instead of {@link #transfer}. */
    boolean zeroCopy() {
        return tls == null;
    }

    /** Sends {@code length} bytes of {@code file} from {@code position} (sendfile); plaintext only. */
    void transfer(FileChannel file, long position, long length) throws IOException {
        long pos = position;
        long end = position + length;
        while (pos < end) {
            long n = file.transferTo(pos, end - pos, socket);
            if (n > 0) {
                pos += n;
            } else if (pos >= file.size()) {
                throw new IOException("file ends at " + pos + " inside its segment");
            } else {
                await(SelectionKey.OP_WRITE);
            }
        }
    }

    /** Waits until the socket is readable or {@link #wakeup} was called (since the last wait). */
    void awaitReadableOrWakeup() throws IOException {
        await(SelectionKey.OP_READ);
    }

    /** Waits only for {@link #wakeup} (the connection reads no more requests until a load finishes). */
    void awaitWakeup() throws IOException {
        await(0);
    }

    /** Ends the current or next wait; safe from any thread. */
    void wakeup() {
        selector.wakeup();
    }

    private void await(int ops) throws IOException {
        if (!socket.isOpen()) {
            throw new ClosedChannelException();
        }
        if (interest != ops) {
            key.interestOps(ops);
            interest = ops;
        }
        selector.select(IGNORE, 0);
        drained = false;
        if (!socket.isOpen()) {
            throw new ClosedChannelException();
        }
    }

    @Override
    public void close() {
        if (tls != null) {
            if (socket.isOpen()) {
                tls.shutdown(socket);
            }
            tls.release(); // only this connection's thread used it
        }
        try {
            selector.close();
        } catch (IOException ignored) {
            // nothing left to release
        }
        try {
            socket.close();
        } catch (IOException ignored) {
            // already closed
        }
    }

    /** The socket as the TLS channel sees it in transmission: reads take what is there; writes wait until all is sent. */
    private final class TlsNetwork implements ByteChannel {
        @Override
        public int read(ByteBuffer b) throws IOException {
            return socket.read(b);
        }

        @Override
        public int write(ByteBuffer b) throws IOException {
            int n = b.remaining();
            writeSocket(b);
            return n;
        }

        @Override
        public boolean isOpen() {
            return socket.isOpen();
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }
}
