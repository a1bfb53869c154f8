package io.strata.nbd;

import static io.strata.nbd.NbdProtocol.*;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.strata.core.device.RawImageDevice;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/**
 * Fuzzed client bytes through the fixed-newstyle negotiation ({@link Handshake}), fed through an
 * in-memory channel that ends where the input does. The contract: the server answers each option
 * with well-formed replies (the option reply magic, a type the spec defines, a sane length) and
 * either chooses an export, sees an ABORT, or ends with an IOException (the peer closed, or broke
 * the protocol: {@link NbdProtocolException}); never another exception, never unbounded output.
 * Seeds ({@code HandshakeFuzzTestInputs/fuzz/}): what nbdinfo (--list, --map, plain), nbdcopy and
 * qemu-img (info, convert) sent to {@code strata serve nbd}, recorded with
 * scripts/nbd-record-sessions.py, and hand-made cases (every option, a 4 GiB option).
 */
class HandshakeFuzzTest {
    private static final Set<Integer> REPLY_TYPES = Set.of(REP_ACK, REP_SERVER, REP_INFO, REP_META_CONTEXT, REP_ERR_UNSUP,
            REP_ERR_POLICY, REP_ERR_INVALID, REP_ERR_TLS_REQD, REP_ERR_UNKNOWN, REP_ERR_TOO_BIG);
    /** Far more than any input of Jazzer's default size can make the server say. */
    private static final int MAX_OUTPUT = 16 << 20;
    private static ExportRegistry exports;

    private static final ByteBuffer OUTPUT = ByteBuffer.allocate(MAX_OUTPUT);

    /** Client bytes in, server bytes collected; reading past the input is the client hanging up. */
    static final class MemoryChannel implements ByteChannel {
        private final ByteBuffer in;
        final ByteBuffer out;

        MemoryChannel(byte[] input, ByteBuffer out) {
            this.in = ByteBuffer.wrap(input);
            this.out = out.clear();
        }

        @Override
        public int read(ByteBuffer dst) {
            if (!in.hasRemaining()) {
                return -1;
            }
            int n = Math.min(dst.remaining(), in.remaining());
            dst.put(in.slice().limit(n));
            in.position(in.position() + n);
            return n;
        }

        @Override
        public int write(ByteBuffer src) {
            if (src.remaining() > out.remaining()) {
                throw new AssertionError("the server wrote more than " + MAX_OUTPUT + " bytes in a handshake");
            }
            int n = src.remaining();
            out.put(src);
            return n;
        }

        @Override
        public boolean isOpen() {
            return true;
        }

        @Override
        public void close() {
        }
    }

    private static ExportRegistry exports() throws IOException {
        if (exports == null) {
            Path image = Files.createTempFile("strata-fuzz", ".img");
            image.toFile().deleteOnExit();
            Files.write(image, new byte[1 << 16]);
            RawImageDevice device = RawImageDevice.open(image);
            ExportRegistry r = new ExportRegistry();
            r.add(new Export("", device, "fuzz default"), true);
            r.add(new Export("raw", device, "fuzz named"), false);
            exports = r;
        }
        return exports;
    }

    @FuzzTest
    void fuzz(byte[] input) throws IOException {
        MemoryChannel ch = new MemoryChannel(input, OUTPUT);
        Negotiated result;
        try {
            result = new Handshake(ch, exports()).run();
        } catch (IOException e) {
            result = null; // the client hung up or broke the protocol: the connection closes
        }
        checkReplies(ch.out.flip(), result != null);
    }

    /** The greeting, then option replies; after EXPORT_NAME the export's size and flags end it. */
    private static void checkReplies(ByteBuffer out, boolean negotiated) {
        if (out.remaining() < 18 || out.getLong(0) != NBDMAGIC || out.getLong(8) != IHAVEOPT) {
            throw new AssertionError("no fixed-newstyle greeting");
        }
        out.position(18);
        while (out.remaining() >= 20 && out.getLong(out.position()) == OPTION_REPLY_MAGIC) {
            int type = out.getInt(out.position() + 12);
            int length = out.getInt(out.position() + 16);
            if (!REPLY_TYPES.contains(type)) {
                throw new AssertionError("reply type 0x" + Integer.toHexString(type) + " is not one the spec defines");
            }
            if (length < 0 || length > MAX_OPTION_LENGTH + 1024 || length > out.remaining() - 20) {
                throw new AssertionError("reply length " + length + " is not what follows it");
            }
            out.position(out.position() + 20 + length);
        }
        int rest = out.remaining();
        // EXPORT_NAME's answer: size u64, flags u16, and 124 zero bytes unless NO_ZEROES was agreed.
        if (rest != 0 && !(negotiated && (rest == 10 || rest == 134))) {
            throw new AssertionError(rest + " bytes after the last option reply are not an option reply");
        }
    }
}
