package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.EOFException;
import java.io.IOException;
import java.net.SocketAddress;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;

/**
 * A deliberately small NBD client for protocol edge cases the real clients never send. Real-client
 * behaviour is tested with nbdinfo, nbdcopy, qemu-img and fio; this one only drives the wire.
 * Every read and write gives up after {@link #timeoutMillis} (SocketTimeoutException), so a server
 * that stops answering fails the test instead of hanging it.
 */
final class TestClient implements AutoCloseable {
    final SocketChannel ch;
    private final Selector selector;
    private final SelectionKey key;
    long timeoutMillis = 10_000;

    TestClient(SocketAddress address) throws IOException {
        this(SocketChannel.open(address));
    }

    /** Drives a socket already connected. */
    TestClient(SocketChannel connected) throws IOException {
        ch = connected;
        ch.configureBlocking(false);
        selector = Selector.open();
        key = ch.register(selector, 0);
    }

    /** Waits up to the timeout for {@code ops} (OP_READ / OP_WRITE). */
    private void await(int ops, long deadline) throws IOException {
        long left = deadline - System.currentTimeMillis();
        if (left <= 0) {
            throw new SocketTimeoutException("no " + (ops == SelectionKey.OP_READ ? "reply" : "room to write")
                    + " within " + timeoutMillis + " ms");
        }
        key.interestOps(ops);
        selector.select(left);
    }

    /** Reads the 18-byte greeting and answers with client flags. */
    void greet() throws IOException {
        ByteBuffer g = read(18);
        assertEquals(NbdProtocol.NBDMAGIC, g.getLong(0));
        assertEquals(NbdProtocol.IHAVEOPT, g.getLong(8));
        write(ByteBuffer.allocate(4).putInt(NbdProtocol.CLIENT_FLAG_FIXED_NEWSTYLE | NbdProtocol.CLIENT_FLAG_NO_ZEROES).flip());
    }

    void sendOption(int option, ByteBuffer data) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(16).putLong(NbdProtocol.IHAVEOPT).putInt(option).putInt(data.remaining());
        write(h.flip());
        write(data);
    }

    /** Reads one option reply; returns {type, data}. */
    Object[] readOptionReply() throws IOException {
        ByteBuffer h = read(20);
        assertEquals(NbdProtocol.OPTION_REPLY_MAGIC, h.getLong(0));
        int type = h.getInt(12);
        int len = h.getInt(16);
        return new Object[] {type, read(len)};
    }

    /** Handshake through NBD_OPT_GO for the default export, simple replies. Returns the export size. */
    long go() throws IOException {
        greet();
        return goAfterOptions();
    }

    /** Handshake through NBD_OPT_GO for export {@code name}, simple replies. Returns the export size. */
    long go(String name) throws IOException {
        greet();
        return goAfterOptions(name);
    }

    /** NBD_OPT_GO for the default export, after the greeting and any options; returns the export size. */
    long goAfterOptions() throws IOException {
        return goAfterOptions("");
    }

    /** NBD_OPT_GO for export {@code name}, after the greeting and any options; returns the export size. */
    long goAfterOptions(String name) throws IOException {
        byte[] n = name.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        sendOption(NbdProtocol.OPT_GO, ByteBuffer.allocate(6 + n.length).putInt(n.length).put(n).putShort((short) 0).flip());
        long size = -1;
        for (;;) {
            Object[] r = readOptionReply();
            int type = (Integer) r[0];
            ByteBuffer d = (ByteBuffer) r[1];
            if (type == NbdProtocol.REP_INFO && d.getShort(0) == NbdProtocol.INFO_EXPORT) {
                size = d.getLong(2);
            } else if (type == NbdProtocol.REP_ACK) {
                return size;
            } else if (type != NbdProtocol.REP_INFO) {
                throw new IOException("GO failed with reply type 0x" + Integer.toHexString(type));
            }
        }
    }

    void request(int type, long cookie, long offset, int length) throws IOException {
        request(type, cookie, offset, length, 0);
    }

    void request(int type, long cookie, long offset, int length, int flags) throws IOException {
        ByteBuffer r = ByteBuffer.allocate(28).putInt(NbdProtocol.REQUEST_MAGIC).putShort((short) flags).putShort((short) type)
                .putLong(cookie).putLong(offset).putInt(length);
        write(r.flip());
    }

    /** Reads a simple reply header; returns {error, cookie}. */
    long[] simpleReply() throws IOException {
        ByteBuffer h = read(16);
        assertEquals(NbdProtocol.SIMPLE_REPLY_MAGIC, h.getInt(0));
        return new long[] {h.getInt(4), h.getLong(8)};
    }

    ByteBuffer read(int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        long deadline = System.currentTimeMillis() + timeoutMillis;
        while (b.hasRemaining()) {
            int r = ch.read(b);
            if (r < 0) {
                throw new EOFException("server closed the connection");
            }
            if (r == 0) {
                await(SelectionKey.OP_READ, deadline);
            }
        }
        return b.flip();
    }

    void write(ByteBuffer b) throws IOException {
        long deadline = System.currentTimeMillis() + timeoutMillis;
        while (b.hasRemaining()) {
            if (ch.write(b) == 0) {
                await(SelectionKey.OP_WRITE, deadline);
            }
        }
    }

    /** Writes what the socket takes now, without waiting; returns the bytes written. */
    int writeNow(ByteBuffer b) throws IOException {
        return ch.write(b);
    }

    /**
     * Asserts that the server hangs up (end of stream or a reset) within the timeout, discarding
     * anything it still sends first; a timeout is not a hang-up and fails.
     */
    void assertClosedByServer() throws IOException {
        ByteBuffer sink = ByteBuffer.allocate(64 << 10);
        long deadline = System.currentTimeMillis() + timeoutMillis;
        for (;;) {
            int r;
            try {
                r = ch.read(sink.clear());
            } catch (IOException reset) {
                return; // ECONNRESET: closed with our data unread
            }
            if (r < 0) {
                return;
            }
            if (r == 0) {
                try {
                    await(SelectionKey.OP_READ, deadline);
                } catch (SocketTimeoutException e) {
                    throw new AssertionError("the server did not close the connection within " + timeoutMillis + " ms");
                }
            }
        }
    }

    static ByteBuffer utf8(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void close() throws IOException {
        selector.close();
        ch.close();
    }
}
