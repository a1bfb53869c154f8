package io.strata.nbd;

import static io.strata.nbd.NbdProtocol.*;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.charset.StandardCharsets;

/**
 * The fixed-newstyle negotiation phase for one connection: greeting, then options until the client
 * enters transmission (GO or EXPORT_NAME) or leaves (ABORT). Unknown options are answered
 * NBD_REP_ERR_UNSUP; malformed ones NBD_REP_ERR_INVALID; an option too long to be real ends the
 * connection after NBD_REP_ERR_TOO_BIG (reading 4 GiB of garbage to resynchronise is not worth it).
 * With TLS on, STARTTLS upgrades the channel in place ({@link TlsChannel}); with TLS required, every
 * option but STARTTLS and ABORT is refused with NBD_REP_ERR_TLS_REQD until then.
 */
final class Handshake {
    /** Transmission flags every Strata export has: read-only, and safe for many connections. */
    static final int TRANSMISSION_FLAGS = TFLAG_HAS_FLAGS | TFLAG_READ_ONLY | TFLAG_SEND_FLUSH
            | TFLAG_CAN_MULTI_CONN | TFLAG_SEND_CACHE;
    private static final int OPTION_HEADER = 16;
    /** Server greeting of the newstyle handshake: NBDMAGIC (8), IHAVEOPT (8), handshake flags (2). */
    private static final int GREETING_SIZE = 18;
    /** Reply to NBD_OPT_EXPORT_NAME: export size (8) and transmission flags (2) ... */
    private static final int EXPORT_NAME_REPLY_SIZE = 10;
    /** ... then 124 zero bytes, unless the client set NBD_FLAG_C_NO_ZEROES (the NBD protocol's "reserved" field). */
    private static final int EXPORT_NAME_REPLY_PADDING = 124;
    /**
     * Options one client may send before it must pick an export. Real clients send a handful (nbdinfo
     * --list: two per export); a client sending options forever is cut off here or, if slow, by the
     * server's handshake timeout.
     */
    static final int MAX_OPTIONS = 4096;

    /** The socket, or after STARTTLS the TLS channel over it. */
    private ByteChannel ch;
    private final ExportRegistry exports;
    private final TlsConfig tls;
    private TlsChannel secure;
    private final ByteBuffer small = ByteBuffer.allocate(256);
    private boolean noZeroes;
    private boolean structured;
    private boolean allocation;
    /** The export the last SET_META_CONTEXT named; contexts apply only to that export. */
    private String metaExport;

    Handshake(ByteChannel ch, ExportRegistry exports) {
        this(ch, exports, TlsConfig.off());
    }

    Handshake(ByteChannel ch, ExportRegistry exports, TlsConfig tls) {
        this.ch = ch;
        this.exports = exports;
        this.tls = tls;
    }

    /** The channel transmission continues on: the one given, or the TLS channel STARTTLS put over it. */
    ByteChannel channel() {
        return ch;
    }

    /** The TLS channel when STARTTLS ran, else null. */
    TlsChannel tlsChannel() {
        return secure;
    }

    /** Runs the negotiation; returns null when the client aborted cleanly. */
    Negotiated run() throws IOException {
        ByteBuffer greet = ByteBuffer.allocate(GREETING_SIZE);
        greet.putLong(NBDMAGIC).putLong(IHAVEOPT).putShort((short) (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)).flip();
        Wire.writeFully(ch, greet);
        ByteBuffer cflags = ByteBuffer.allocate(4);
        Wire.readFully(ch, cflags);
        int clientFlags = cflags.getInt(0);
        if ((clientFlags & ~(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES)) != 0) {
            throw new NbdProtocolException("client flags 0x" + Integer.toHexString(clientFlags) + " include unknown bits");
        }
        noZeroes = (clientFlags & CLIENT_FLAG_NO_ZEROES) != 0;
        ByteBuffer header = ByteBuffer.allocate(OPTION_HEADER);
        for (int count = 0;; count++) {
            if (count == MAX_OPTIONS) {
                throw new NbdProtocolException(MAX_OPTIONS + " options without choosing an export");
            }
            header.clear();
            Wire.readFully(ch, header);
            long magic = header.getLong(0);
            int option = header.getInt(8);
            long length = Integer.toUnsignedLong(header.getInt(12));
            if (magic != IHAVEOPT) {
                throw new NbdProtocolException("option magic 0x" + Long.toHexString(magic) + " is not IHAVEOPT");
            }
            if (length > MAX_OPTION_LENGTH) {
                if (option != OPT_EXPORT_NAME) {
                    reply(option, REP_ERR_TOO_BIG, ByteBuffer.allocate(0));
                }
                throw new NbdProtocolException(optionName(option) + " length " + length + " exceeds " + MAX_OPTION_LENGTH);
            }
            ByteBuffer data = ByteBuffer.allocate((int) length);
            Wire.readFully(ch, data);
            data.flip();
            Negotiated done = handle(option, data);
            if (done != null) {
                return done == ABORTED ? null : done;
            }
        }
    }

    private static final Negotiated ABORTED = new Negotiated(null, false, false);

    private Negotiated handle(int option, ByteBuffer data) throws IOException {
        if (tls.required() && secure == null && option != OPT_STARTTLS && option != OPT_ABORT) {
            // FORCEDTLS (spec, "TLS support"): nothing but STARTTLS and ABORT before TLS.
            if (option == OPT_EXPORT_NAME) {
                throw new NbdProtocolException("EXPORT_NAME before STARTTLS, and TLS is required");
            }
            reply(option, REP_ERR_TLS_REQD, text("TLS is required: send NBD_OPT_STARTTLS first"));
            return null;
        }
        switch (option) {
            case OPT_EXPORT_NAME: {
                String name = StandardCharsets.UTF_8.decode(data).toString();
                Export e = exports.find(name);
                if (e == null) {
                    // EXPORT_NAME has no error reply: the spec says to close the connection.
                    throw new NbdProtocolException("EXPORT_NAME for unknown export '" + name + "'");
                }
                ByteBuffer out = ByteBuffer.allocate(EXPORT_NAME_REPLY_SIZE + (noZeroes ? 0 : EXPORT_NAME_REPLY_PADDING));
                out.putLong(e.device().size()).putShort((short) TRANSMISSION_FLAGS).position(out.capacity()).flip();
                Wire.writeFully(ch, out);
                return new Negotiated(e, structured, allocation && name.equals(metaExport));
            }
            case OPT_ABORT:
                reply(option, REP_ACK, ByteBuffer.allocate(0));
                return ABORTED;
            case OPT_LIST:
                if (data.hasRemaining()) {
                    return invalid(option, "LIST carries no data");
                }
                for (Export e : exports.all()) {
                    byte[] name = e.name().getBytes(StandardCharsets.UTF_8);
                    byte[] desc = e.description().getBytes(StandardCharsets.UTF_8);
                    ByteBuffer b = ByteBuffer.allocate(4 + name.length + desc.length);
                    b.putInt(name.length).put(name).put(desc).flip();
                    reply(option, REP_SERVER, b);
                }
                reply(option, REP_ACK, ByteBuffer.allocate(0));
                return null;
            case OPT_INFO:
            case OPT_GO:
                return infoOrGo(option, data);
            case OPT_STRUCTURED_REPLY:
                if (data.hasRemaining()) {
                    return invalid(option, "STRUCTURED_REPLY carries no data");
                }
                structured = true;
                reply(option, REP_ACK, ByteBuffer.allocate(0));
                return null;
            case OPT_LIST_META_CONTEXT:
            case OPT_SET_META_CONTEXT:
                return metaContext(option, data);
            case OPT_STARTTLS:
                if (tls.enabled()) {
                    return startTls(data);
                }
                reply(option, REP_ERR_UNSUP, text("TLS is off on this server"));
                return null;
            default:
                reply(option, REP_ERR_UNSUP, ByteBuffer.allocate(0));
                return null;
        }
    }

    /**
     * STARTTLS: ACK in plaintext, then the TLS handshake; everything after it goes through TLS.
     * Whatever was negotiated before is forgotten: a man in the middle could have injected it in
     * plaintext (nbdkit's CVE-2021-3716 was such an injected STRUCTURED_REPLY). Nothing read ahead
     * of the handshake is kept either: the option was read to its exact length, so injected
     * plaintext behind it reaches the TLS engine, which rejects it.
     */
    private Negotiated startTls(ByteBuffer data) throws IOException {
        if (data.hasRemaining()) {
            return invalid(OPT_STARTTLS, "STARTTLS carries no data");
        }
        if (secure != null) {
            return invalid(OPT_STARTTLS, "TLS is already running");
        }
        reply(OPT_STARTTLS, REP_ACK, ByteBuffer.allocate(0));
        secure = TlsChannel.accept(ch, tls.newEngine());
        ch = secure;
        structured = false;
        allocation = false;
        metaExport = null;
        return null;
    }

    /**
     * The minimum block size advertised for an export of {@code size} bytes: 512, or 1 when the size
     * is not a whole number of 512-byte blocks. A client must not ask for less than the minimum nor
     * for a length that is not a multiple of it (proto.md, "Block size constraints"), so with 512 the
     * tail of such an export could not be read at all (nbdcopy refused it, qemu-img aborted).
     */
    static int minimumBlock(long size) {
        return size % MIN_BLOCK == 0 ? MIN_BLOCK : 1;
    }

    private Negotiated infoOrGo(int option, ByteBuffer data) throws IOException {
        if (data.remaining() < 6) {
            return invalid(option, "too short");
        }
        int nameLen = data.getInt();
        if (nameLen < 0 || nameLen > data.remaining() - 2) {
            return invalid(option, "name length " + nameLen + " exceeds the option");
        }
        String name = exportName(data, nameLen);
        if (name == null) {
            return invalid(option, BAD_NAME);
        }
        int requests = Short.toUnsignedInt(data.getShort());
        if (data.remaining() != requests * 2) {
            return invalid(option, requests + " info requests do not match the option length");
        }
        boolean wantName = false;
        boolean wantDescription = false;
        for (int i = 0; i < requests; i++) {
            int t = Short.toUnsignedInt(data.getShort());
            wantName |= t == INFO_NAME;
            wantDescription |= t == INFO_DESCRIPTION;
        }
        Export e = exports.find(name);
        if (e == null) {
            reply(option, REP_ERR_UNKNOWN, text("no export named '" + shown(name) + "'"));
            return null;
        }
        ByteBuffer info = ByteBuffer.allocate(12);
        info.putShort((short) INFO_EXPORT).putLong(e.device().size()).putShort((short) TRANSMISSION_FLAGS).flip();
        reply(option, REP_INFO, info);
        ByteBuffer bs = ByteBuffer.allocate(14);
        bs.putShort((short) INFO_BLOCK_SIZE).putInt(minimumBlock(e.device().size())).putInt(PREFERRED_BLOCK)
                .putInt(MAX_PAYLOAD).flip();
        reply(option, REP_INFO, bs);
        if (wantName) {
            byte[] n = e.name().getBytes(StandardCharsets.UTF_8);
            reply(option, REP_INFO, ByteBuffer.allocate(2 + n.length).putShort((short) INFO_NAME).put(n).flip());
        }
        if (wantDescription) {
            byte[] d = e.description().getBytes(StandardCharsets.UTF_8);
            reply(option, REP_INFO, ByteBuffer.allocate(2 + d.length).putShort((short) INFO_DESCRIPTION).put(d).flip());
        }
        reply(option, REP_ACK, ByteBuffer.allocate(0));
        if (option == OPT_GO) {
            return new Negotiated(e, structured, allocation && name.equals(metaExport));
        }
        return null;
    }

    private Negotiated metaContext(int option, ByteBuffer data) throws IOException {
        if (option == OPT_SET_META_CONTEXT) {
            // The spec: a SET replaces the previous selection "including when this command fails".
            allocation = false;
            metaExport = null;
        }
        if (option == OPT_SET_META_CONTEXT && !structured) {
            return invalid(option, "SET_META_CONTEXT before STRUCTURED_REPLY");
        }
        if (data.remaining() < 8) {
            return invalid(option, "too short");
        }
        int nameLen = data.getInt();
        if (nameLen < 0 || nameLen > data.remaining() - 4) {
            return invalid(option, "export name length " + nameLen + " exceeds the option");
        }
        String name = exportName(data, nameLen);
        if (name == null) {
            return invalid(option, BAD_NAME);
        }
        int queries = data.getInt();
        String[] q = new String[Math.max(0, Math.min(queries, 1024))];
        if (queries < 0 || queries > q.length) {
            return invalid(option, queries + " queries");
        }
        for (int i = 0; i < queries; i++) {
            if (data.remaining() < 4) {
                return invalid(option, "query " + i + " is cut off");
            }
            int len = data.getInt();
            if (len < 0 || len > data.remaining()) {
                return invalid(option, "query " + i + " length " + len + " exceeds the option");
            }
            q[i] = utf8(data, len);
        }
        if (data.hasRemaining()) {
            return invalid(option, "trailing bytes after the queries");
        }
        if (exports.find(name) == null) {
            reply(option, REP_ERR_UNKNOWN, text("no export named '" + shown(name) + "'"));
            return null;
        }
        boolean matched = false;
        if (queries == 0 && option == OPT_LIST_META_CONTEXT) {
            matched = true;
        }
        for (String s : q) {
            if (s.equals(BASE_ALLOCATION) || (option == OPT_LIST_META_CONTEXT && s.equals("base:"))) {
                matched = true;
            }
        }
        if (matched) {
            byte[] n = BASE_ALLOCATION.getBytes(StandardCharsets.US_ASCII);
            // LIST's replies carry context ID 0 (the spec: the ID is only meaningful after SET).
            int id = option == OPT_SET_META_CONTEXT ? Negotiated.ALLOCATION_CONTEXT_ID : 0;
            reply(option, REP_META_CONTEXT, ByteBuffer.allocate(4 + n.length).putInt(id).put(n).flip());
        }
        if (option == OPT_SET_META_CONTEXT) {
            allocation = matched;
            metaExport = name;
        }
        reply(option, REP_ACK, ByteBuffer.allocate(0));
        return null;
    }

    private Negotiated invalid(int option, String why) throws IOException {
        reply(option, REP_ERR_INVALID, text(optionName(option) + ": " + why));
        return null;
    }

    private static final String BAD_NAME = "the export name is longer than " + Export.MAX_NAME_BYTES + " bytes or not UTF-8";

    /**
     * The export name of {@code len} bytes at {@code data}'s position (always consumed), or null when
     * NBD does not allow it: longer than 4096 bytes or not valid UTF-8 (proto.md: names are UTF-8
     * strings of at most 4096 bytes), answered with NBD_REP_ERR_INVALID as nbdkit does.
     */
    private static String exportName(ByteBuffer data, int len) {
        ByteBuffer bytes = data.slice().limit(len);
        data.position(data.position() + len);
        if (len > Export.MAX_NAME_BYTES) {
            return null;
        }
        try {
            return StandardCharsets.UTF_8.newDecoder().decode(bytes).toString(); // reports malformed input
        } catch (java.nio.charset.CharacterCodingException e) {
            return null;
        }
    }

    /** A client's name as an error text shows it: at most 200 characters of it. */
    private static String shown(String name) {
        return name.length() <= 200 ? name : name.substring(0, 200) + "...";
    }

    private static String utf8(ByteBuffer data, int len) {
        byte[] b = new byte[len];
        data.get(b);
        return new String(b, StandardCharsets.UTF_8);
    }

    private static ByteBuffer text(String s) {
        return ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    }

    /** An option reply: magic u64, option u32, reply type u32, length u32, data. */
    private void reply(int option, int type, ByteBuffer data) throws IOException {
        small.clear();
        small.putLong(OPTION_REPLY_MAGIC).putInt(option).putInt(type).putInt(data.remaining()).flip();
        Wire.writeFully(ch, small);
        Wire.writeFully(ch, data);
    }
}
