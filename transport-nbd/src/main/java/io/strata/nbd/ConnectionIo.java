package io.strata.nbd;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
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
 */
final class ConnectionIo implements AutoCloseable {
    private static final Consumer<SelectionKey> IGNORE = k -> { };

    private final SocketChannel socket;
    private final Selector selector;
    private final SelectionKey key;
    /** The interest set last given to the key; changed only when a wait needs another one. */
    private int interest;

    ConnectionIo(SocketChannel socket) throws IOException {
        this.socket = socket;
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
        return socket.read(b);
    }

    /** Fills {@code b}, waiting for the peer as needed (payloads that follow a request header). */
    void readFully(ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            int n = socket.read(b);
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
        while (b.hasRemaining()) {
            if (socket.write(b) == 0) {
                await(SelectionKey.OP_WRITE);
            }
        }
    }

    /** Sends {@code length} bytes of {@code file} from {@code position} (sendfile). */
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
        if (!socket.isOpen()) {
            throw new ClosedChannelException();
        }
    }

    @Override
    public void close() {
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
}
