package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;

/**
 * A deliberately small NBD client for protocol edge cases the real clients never send. Real-client
 * behaviour is tested with nbdinfo, nbdcopy, qemu-img and fio; this one only drives the wire.
 */
final class TestClient implements AutoCloseable {
    final SocketChannel ch;

    TestClient(SocketAddress address) throws IOException {
        ch = SocketChannel.open(address);
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
        sendOption(NbdProtocol.OPT_GO, ByteBuffer.allocate(6).putInt(0).putShort((short) 0).flip());
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
        ByteBuffer r = ByteBuffer.allocate(28).putInt(NbdProtocol.REQUEST_MAGIC).putShort((short) 0).putShort((short) type)
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
        Wire.readFully(ch, b);
        return b.flip();
    }

    void write(ByteBuffer b) throws IOException {
        Wire.writeFully(ch, b);
    }

    static ByteBuffer utf8(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void close() throws IOException {
        ch.close();
    }
}
