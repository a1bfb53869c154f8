package io.strata.nbd;

import static io.strata.nbd.NbdProtocol.*;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Fuzzed request streams after a valid handshake, against a live server over a unix socket (a RAFS
 * image with zstd chunks, so reads load, decompress and check chunks on the loader pool). The first
 * input byte picks the negotiation (bit 0: structured replies, bit 1: base:allocation); the rest is
 * sent as requests. The harness frames them as the server does, renumbers cookies (so each reply
 * names one request) and keeps write payloads small; then it checks, within a deadline: every
 * request the server read before it stopped (a bad magic, DISC, an oversized write, the end) is
 * answered exactly once, with a well-formed reply; in-range reads return the image's bytes, wrong
 * ones an errno. A server that stops answering, answers twice, or sends wrong bytes fails; so does
 * a dead server (the next iteration's handshake). Seeds ({@code TransmissionFuzzTestInputs/fuzz/}):
 * the requests nbdinfo, nbdcopy and qemu-img sent, recorded with scripts/nbd-record-sessions.py,
 * and hand-made odd requests (unknown flags and commands, ranges wrapping 2^64, writes, bad magic).
 */
class TransmissionFuzzTest {
    private static final long DEADLINE_NANOS = 30_000_000_000L;
    private static NbdServer server;
    private static Path socket;
    private static byte[] device;

    private static synchronized void startServer() throws IOException {
        if (server != null) {
            return;
        }
        Path dir = Files.createTempDirectory("strata-fuzz-nbd");
        dir.toFile().deleteOnExit();
        SyntheticImage.Written w = SyntheticImage.write(dir.resolve("img"), List.of(
                SyntheticImage.uniformBlob(new Random(5), 3, 65536, Compression.ZSTD, DigestAlgorithm.BLAKE3)));
        // A small cache: chunks are evicted and loaded again, as under a real workload.
        FlatDevice dev = FlatDevice.open(w.bootstrap(), new LocalBlobDirectory(w.blobDir()), new FlatDeviceOptions(128 << 10, false));
        device = w.expectedDevice();
        ExportRegistry exports = new ExportRegistry();
        exports.add(new Export("", dev, "fuzz"), true);
        server = new NbdServer(exports, NbdServer.Options.defaults().withMaxInflight(2).withLoadThreads(2));
        socket = dir.resolve("nbd.sock");
        server.listenUnix(socket);
    }

    /** One request as the harness sent it: what its reply must look like. */
    private record Sent(int flags, int type, long offset, long length) {
        boolean readInRange() {
            return type == CMD_READ && flags == 0 && offset >= 0 && length <= MAX_PAYLOAD && offset <= device.length
                    && length <= device.length - offset;
        }
    }

    @FuzzTest
    void fuzz(byte[] input) throws IOException {
        startServer();
        boolean structured = input.length > 0 && (input[0] & 1) != 0;
        boolean allocation = structured && (input[0] & 2) != 0;
        List<Sent> sent = new ArrayList<>();
        ByteBuffer stream = frame(input, sent);
        try (TestClient c = new TestClient(UnixDomainSocketAddress.of(socket))) {
            c.greet();
            if (structured) {
                c.sendOption(OPT_STRUCTURED_REPLY, ByteBuffer.allocate(0));
                expect(c, REP_ACK);
            }
            if (allocation) {
                byte[] q = BASE_ALLOCATION.getBytes();
                c.sendOption(OPT_SET_META_CONTEXT, ByteBuffer.allocate(12 + q.length).putInt(0).putInt(1).putInt(q.length).put(q).flip());
                expect(c, REP_META_CONTEXT);
                expect(c, REP_ACK);
            }
            if (c.goAfterOptions() != device.length) {
                throw new AssertionError("GO reported another size");
            }
            ByteBuffer replies = exchange(c.ch, stream);
            new ReplyChecker(sent, structured, allocation).check(replies);
        }
    }

    private static void expect(TestClient c, int type) throws IOException {
        int got = (Integer) c.readOptionReply()[0];
        if (got != type) {
            throw new AssertionError("option reply 0x" + Integer.toHexString(got) + ", expected 0x" + Integer.toHexString(type));
        }
    }

    /**
     * Frames the input's requests as the server will read them, up to where the server stops
     * reading: cookies become the request's index, write payloads are cut to 64 KiB at most (and
     * padded from the input), a partial request at the end is dropped.
     */
    private static ByteBuffer frame(byte[] input, List<Sent> sent) {
        ByteBuffer in = ByteBuffer.wrap(input);
        in.position(Math.min(1, input.length));
        ByteBuffer out = ByteBuffer.allocate(input.length + 64 * (65536 + NbdRequest.SIZE));
        while (in.remaining() >= NbdRequest.SIZE) {
            int at = in.position();
            ByteBuffer h = ByteBuffer.allocate(NbdRequest.SIZE).put(in.slice().limit(NbdRequest.SIZE)).flip();
            in.position(at + NbdRequest.SIZE);
            int magic = h.getInt(0);
            int flags = Short.toUnsignedInt(h.getShort(4));
            int type = Short.toUnsignedInt(h.getShort(6));
            long length = Integer.toUnsignedLong(h.getInt(24));
            if (magic != REQUEST_MAGIC || type == CMD_DISC) {
                out.put(h); // the server stops here, answering what came before
                break;
            }
            if (type == CMD_WRITE && length > MAX_PAYLOAD) {
                out.put(h);
                break;
            }
            if (type == CMD_WRITE) {
                length &= 0xFFFF;
                h.putInt(24, (int) length);
                if (out.remaining() < NbdRequest.SIZE + length) {
                    break;
                }
            }
            h.putLong(8, sent.size());
            out.put(h);
            sent.add(new Sent(flags, type, h.getLong(16), length));
            if (type == CMD_WRITE) {
                int fromInput = (int) Math.min(length, in.remaining());
                out.put(in.slice().limit(fromInput));
                in.position(in.position() + fromInput);
                out.put(new byte[(int) length - fromInput]);
            }
        }
        return out.flip();
    }

    /** Sends the stream while reading replies; half-closes; reads to the end. Fails if the server stalls. */
    private static ByteBuffer exchange(SocketChannel ch, ByteBuffer stream) throws IOException {
        ByteBuffer replies = ByteBuffer.allocate(1 << 20);
        long deadline = System.nanoTime() + DEADLINE_NANOS;
        try (Selector selector = Selector.open()) {
            SelectionKey key = ch.register(selector, SelectionKey.OP_READ | SelectionKey.OP_WRITE);
            boolean halfClosed = false;
            for (;;) {
                if (!halfClosed && !stream.hasRemaining()) {
                    try {
                        ch.shutdownOutput(); // the server reads EOF after the last request and answers the rest
                    } catch (IOException e) {
                        // the server already closed
                    }
                    halfClosed = true;
                    key.interestOps(SelectionKey.OP_READ);
                }
                if (!halfClosed) {
                    try {
                        ch.write(stream);
                    } catch (IOException e) {
                        stream.position(stream.limit()); // the server hung up (a bad request): read what it said
                    }
                }
                if (!replies.hasRemaining()) {
                    replies = ByteBuffer.allocate(replies.capacity() * 2).put(replies.flip());
                }
                int n;
                try {
                    n = ch.read(replies);
                } catch (IOException reset) {
                    n = -1;
                }
                if (n < 0) {
                    return replies.flip();
                }
                if (n == 0) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        throw new AssertionError("the server neither answered nor closed within " + DEADLINE_NANOS / 1_000_000_000 + " s");
                    }
                    selector.select(Math.max(1, left / 1_000_000));
                }
            }
        }
    }

    /** Matches replies to the requests sent. */
    private static final class ReplyChecker {
        private final List<Sent> sent;
        private final boolean structured;
        private final boolean allocation;
        private final boolean[] done;
        /** Bytes of each structured read reply received so far. */
        private final long[] covered;

        ReplyChecker(List<Sent> sent, boolean structured, boolean allocation) {
            this.sent = sent;
            this.structured = structured;
            this.allocation = allocation;
            this.done = new boolean[sent.size()];
            this.covered = new long[sent.size()];
        }

        void check(ByteBuffer r) {
            while (r.hasRemaining()) {
                if (structured) {
                    chunk(r);
                } else {
                    simple(r);
                }
            }
            for (int i = 0; i < done.length; i++) {
                if (!done[i]) {
                    throw new AssertionError("request " + i + " " + sent.get(i) + " was never answered");
                }
            }
        }

        private Sent request(long cookie) {
            if (cookie < 0 || cookie >= sent.size()) {
                throw new AssertionError("a reply for cookie " + cookie + ", which no request had");
            }
            if (done[(int) cookie]) {
                throw new AssertionError("request " + cookie + " answered twice");
            }
            return sent.get((int) cookie);
        }

        private static void need(ByteBuffer r, long n, String what) {
            if (r.remaining() < n) {
                throw new AssertionError(what + " cut off: " + r.remaining() + " of " + n + " bytes");
            }
        }

        private void simple(ByteBuffer r) {
            need(r, 16, "simple reply");
            if (r.getInt() != SIMPLE_REPLY_MAGIC) {
                throw new AssertionError("bad simple reply magic at " + (r.position() - 4));
            }
            int error = r.getInt();
            long cookie = r.getLong();
            Sent s = request(cookie);
            checkError(s, error);
            if (error == 0 && s.type() == CMD_READ) {
                need(r, s.length(), "read data");
                checkData(r, s.offset(), (int) s.length());
            }
            done[(int) cookie] = true;
        }

        private void chunk(ByteBuffer r) {
            need(r, 20, "structured chunk");
            if (r.getInt() != STRUCTURED_REPLY_MAGIC) {
                throw new AssertionError("bad structured reply magic at " + (r.position() - 4));
            }
            int flags = Short.toUnsignedInt(r.getShort());
            int type = Short.toUnsignedInt(r.getShort());
            long cookie = r.getLong();
            long length = Integer.toUnsignedLong(r.getInt());
            Sent s = request(cookie);
            need(r, length, "chunk payload");
            int end = r.position() + (int) length;
            switch (type) {
                case REPLY_TYPE_NONE:
                    if (length != 0 || (flags & REPLY_FLAG_DONE) == 0) {
                        throw new AssertionError("NONE chunk with a payload or without DONE");
                    }
                    checkError(s, 0);
                    if (s.type() == CMD_READ && covered[(int) cookie] != s.length()) {
                        throw new AssertionError("read " + cookie + " ended after " + covered[(int) cookie] + " of " + s.length() + " bytes");
                    }
                    break;
                case REPLY_TYPE_ERROR:
                    checkError(s, r.getInt());
                    if ((flags & REPLY_FLAG_DONE) == 0 || covered[(int) cookie] != 0) {
                        throw new AssertionError("an error chunk after data, or not final");
                    }
                    break;
                case REPLY_TYPE_OFFSET_DATA: {
                    long offset = r.getLong();
                    inRead(s, offset, length - 8);
                    checkData(r, offset, (int) (length - 8));
                    covered[(int) cookie] += length - 8;
                    break;
                }
                case REPLY_TYPE_OFFSET_HOLE: {
                    long offset = r.getLong();
                    long size = Integer.toUnsignedLong(r.getInt());
                    inRead(s, offset, size);
                    for (long i = offset; i < offset + size; i++) {
                        if (device[(int) i] != 0) {
                            throw new AssertionError("a hole at " + offset + "+" + size + " over data at " + i);
                        }
                    }
                    covered[(int) cookie] += size;
                    break;
                }
                case REPLY_TYPE_BLOCK_STATUS:
                    if (s.type() != CMD_BLOCK_STATUS || !allocation || r.getInt() != Negotiated.ALLOCATION_CONTEXT_ID
                            || (length - 4) % 8 != 0 || length == 4) {
                        throw new AssertionError("a malformed or unrequested block status for " + s);
                    }
                    break;
                default:
                    throw new AssertionError("chunk type " + type + " for " + s);
            }
            r.position(end);
            if ((flags & REPLY_FLAG_DONE) != 0) {
                if (type != REPLY_TYPE_ERROR && s.type() == CMD_READ && covered[(int) cookie] != s.length()) {
                    throw new AssertionError("read " + cookie + " done after " + covered[(int) cookie] + " of " + s.length() + " bytes");
                }
                done[(int) cookie] = true;
            }
        }

        private static void inRead(Sent s, long offset, long size) {
            if (!s.readInRange() || offset < s.offset() || offset + size > s.offset() + s.length()) {
                throw new AssertionError("data " + offset + "+" + size + " outside " + s);
            }
        }

        /** Reads in range must succeed; everything else a read-only server cannot do gets an errno. */
        private static void checkError(Sent s, int error) {
            if (s.readInRange()) {
                if (error != 0) {
                    throw new AssertionError("a good read failed with errno " + error + ": " + s);
                }
                return;
            }
            boolean mayFail = s.type() != CMD_FLUSH || s.flags() != 0;
            if (error == 0 && (s.type() == CMD_READ || s.type() == CMD_WRITE || s.type() == CMD_TRIM
                    || s.type() == CMD_WRITE_ZEROES || s.type() > CMD_BLOCK_STATUS || s.flags() != 0 && s.type() != CMD_BLOCK_STATUS)) {
                throw new AssertionError("success for a request that cannot succeed: " + s);
            }
            if (error != 0 && !mayFail) {
                throw new AssertionError("FLUSH failed with errno " + error);
            }
            if (error != 0 && error != EPERM && error != EINVAL && error != EIO && error != EOVERFLOW && error != ENOTSUP) {
                throw new AssertionError("errno " + error + " is not one the spec allows: " + s);
            }
        }

        private static void checkData(ByteBuffer r, long offset, int length) {
            for (int i = 0; i < length; i++) {
                if (r.get() != device[(int) offset + i]) {
                    throw new AssertionError("wrong byte at device offset " + (offset + i));
                }
            }
        }
    }
}
