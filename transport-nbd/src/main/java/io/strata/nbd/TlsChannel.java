package io.strata.nbd;

import io.strata.core.buffer.NativeBuffer;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.WritableByteChannel;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLSession;

/**
 * TLS over a connected byte channel, driving an {@link SSLEngine}: what the NBD handshake and
 * transmission read and write after STARTTLS. One thread uses it at a time (the handshake's, then
 * the connection's). The network channel is the blocking socket during the handshake; transmission
 * swaps in {@link ConnectionIo}'s view of the non-blocking socket ({@link #useNetwork}), whose reads
 * may return nothing and whose writes wait until everything is sent. {@link #read} therefore
 * returns 0 when no whole record has arrived, and never waits once it has bytes to return. Every
 * buffer is allocated once per connection, none per read or write, and freed when it ends.
 */
final class TlsChannel implements ByteChannel {
    private static final ByteBuffer EMPTY = ByteBuffer.allocate(0);
    /** Records gathered before one socket write: fewer syscalls for large replies. */
    private static final int RECORDS_PER_WRITE = 4;

    private ByteChannel net;
    private final SSLEngine engine;
    /** Ciphertext read from the peer and not yet unwrapped (write mode). */
    private final ByteBuffer netIn;
    /** Plaintext unwrapped and not yet returned by {@link #read} (write mode). */
    private final ByteBuffer appIn;
    /** Ciphertext wrapped and not yet written (write mode). */
    private final ByteBuffer netOut;
    /**
     * The native memory behind the three buffers, freed by {@link #release} when the connection
     * ends rather than by a GC that may be minutes away (as Connection's own buffers are).
     */
    private final NativeBuffer[] memory = new NativeBuffer[3];
    private boolean released;
    private final int packetSize;
    private final int appSize;
    private boolean inboundClosed;

    private TlsChannel(ByteChannel net, SSLEngine engine) {
        this.net = net;
        this.engine = engine;
        SSLSession s = engine.getSession();
        packetSize = s.getPacketBufferSize();
        appSize = s.getApplicationBufferSize();
        netIn = buffer(0, packetSize);
        appIn = buffer(1, appSize);
        netOut = buffer(2, packetSize * RECORDS_PER_WRITE);
    }

    private ByteBuffer buffer(int i, int capacity) {
        memory[i] = NativeBuffer.allocate(capacity);
        return memory[i].view().duplicate();
    }

    /** Frees the buffers; idempotent. The channel is unusable afterwards (its calls throw). */
    void release() {
        if (!released) {
            released = true;
            for (NativeBuffer b : memory) {
                b.close();
            }
        }
    }

    private void checkUsable() throws ClosedChannelException {
        if (released) {
            throw new ClosedChannelException(); // never touch freed memory
        }
    }

    /**
     * What to add to a failed handshake's message when the cause is known but the JDK's words do not
     * say it. With --tls-verify-peer on JDK 24+ (TLS 1.3), gnutls 3.7 clients (Debian 12's libnbd and
     * QEMU) send no certificate for an RSA key: JSSE's CertificateRequest no longer lists the
     * rsa_pkcs1 schemes (RFC 8446 allows them in certificates only), and gnutls 3.7 then finds no
     * certificate it may use. ECDSA client keys work with every JDK.
     */
    static String hint(String message, int jdkFeature) {
        if (message == null || !message.contains("Empty client certificate chain")) {
            return "";
        }
        return jdkFeature >= 24 ? " (the client sent no certificate: has it one? gnutls 3.7 clients, e.g. Debian 12's libnbd"
                + " and QEMU, send none for an RSA key to this JDK: give those an ECDSA key)" : " (the client sent no certificate)";
    }

    /**
     * Runs the server side of the TLS handshake on {@code net} (right after the STARTTLS ACK) and
     * returns the channel to use from then on. A failed handshake sends the engine's alert (so the
     * client learns why) and throws an {@link SSLException} whose message says what failed.
     */
    static TlsChannel accept(ByteChannel net, SSLEngine engine) throws IOException {
        TlsChannel t = new TlsChannel(net, engine);
        boolean ok = false;
        try {
            engine.beginHandshake();
            t.handshake();
            ok = true;
        } catch (SSLException e) {
            t.sendAlert();
            throw new SSLException("TLS handshake failed: " + e.getMessage() + hint(e.getMessage(), Runtime.version().feature()), e);
        } catch (EOFException e) {
            throw new EOFException("peer closed the connection during the TLS handshake");
        } finally {
            if (!ok) {
                t.release();
            }
        }
        return t;
    }

    /** From now on reads and writes go to {@code network} (the same connection, seen another way). */
    void useNetwork(ByteChannel network) {
        this.net = network;
    }

    /** The negotiated protocol and cipher suite, for the connection's log line. */
    String describe() {
        SSLSession s = engine.getSession();
        return s.getProtocol() + " " + s.getCipherSuite();
    }

    private void handshake() throws IOException {
        for (;;) {
            switch (engine.getHandshakeStatus()) {
                case NEED_TASK:
                    runTasks();
                    break;
                case NEED_WRAP:
                    wrapControl();
                    if (engine.isOutboundDone()) {
                        throw new SSLException("the TLS engine closed the connection");
                    }
                    break;
                case NEED_UNWRAP:
                case NEED_UNWRAP_AGAIN:
                    netIn.flip();
                    SSLEngineResult r;
                    try {
                        r = engine.unwrap(netIn, appIn);
                    } finally {
                        netIn.compact();
                    }
                    if (r.getStatus() == SSLEngineResult.Status.BUFFER_UNDERFLOW) {
                        fillNetIn();
                    } else if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                        throw new EOFException("closed");
                    } else if (r.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
                        throw new SSLException("early data overflows the buffer");
                    }
                    break;
                default: // FINISHED, NOT_HANDSHAKING
                    return;
            }
        }
    }

    private void runTasks() {
        Runnable task;
        while ((task = engine.getDelegatedTask()) != null) {
            task.run();
        }
    }

    /** Reads more ciphertext; EOF is an error here (mid-record or mid-handshake). */
    private void fillNetIn() throws IOException {
        if (!netIn.hasRemaining()) {
            throw new SSLException("a TLS record exceeds " + netIn.capacity() + " bytes");
        }
        if (net.read(netIn) < 0) {
            throw new EOFException("peer closed the connection");
        }
    }

    /** Sends what the engine has to say on its own (handshake messages, key updates, alerts). */
    private void wrapControl() throws IOException {
        while (engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
            SSLEngineResult r = engine.wrap(EMPTY, netOut);
            if (r.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
                flushNetOut();
            } else if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                break;
            }
        }
        flushNetOut();
    }

    private void sendAlert() {
        try {
            engine.closeOutbound();
            wrapControl();
        } catch (IOException | RuntimeException ignored) {
            // the peer may be gone; the handshake failure is what gets reported
        }
    }

    private void flushNetOut() throws IOException {
        netOut.flip();
        try {
            while (netOut.hasRemaining()) {
                net.write(netOut);
            }
        } finally {
            netOut.compact();
        }
    }

    /**
     * Reads plaintext into {@code dst}: what is buffered, then every whole record that has arrived.
     * Returns the bytes read; 0 only on a non-blocking network with no whole record there; -1 at
     * the end (close_notify, or the peer dropping the connection). It reads the network again only
     * while it has nothing to return, so on a blocking network it never waits with bytes in hand.
     */
    @Override
    public int read(ByteBuffer dst) throws IOException {
        checkUsable();
        int total = 0;
        while (dst.hasRemaining()) {
            if (appIn.position() > 0) {
                total += drainAppIn(dst);
                continue;
            }
            if (inboundClosed) {
                break;
            }
            // Unwrap straight into the caller's buffer when a whole record fits: one copy less.
            ByteBuffer target = dst.remaining() >= appSize ? dst : appIn;
            int before = target.position();
            netIn.flip();
            SSLEngineResult r;
            try {
                r = engine.unwrap(netIn, target);
            } finally {
                netIn.compact();
            }
            if (target == dst) {
                total += dst.position() - before;
            }
            switch (r.getStatus()) {
                case CLOSED:
                    inboundClosed = true; // close_notify
                    break;
                case BUFFER_UNDERFLOW:
                    if (total > 0) {
                        return total;
                    }
                    if (!netIn.hasRemaining()) {
                        throw new SSLException("a TLS record exceeds " + netIn.capacity() + " bytes");
                    }
                    int n = net.read(netIn);
                    if (n < 0) {
                        inboundClosed = true; // dropped without close_notify: a hard disconnect, still an end
                    } else if (n == 0) {
                        return 0;
                    }
                    break;
                case BUFFER_OVERFLOW:
                    throw new SSLException("TLS record larger than the negotiated size");
                default:
                    if (r.bytesConsumed() == 0 && r.bytesProduced() == 0 && r.getHandshakeStatus() != SSLEngineResult.HandshakeStatus.NEED_TASK
                            && r.getHandshakeStatus() != SSLEngineResult.HandshakeStatus.NEED_WRAP) {
                        // A hostile peer must not make this loop spin: the engine moved nothing and wants nothing.
                        throw new SSLException("the TLS engine made no progress (" + r.getHandshakeStatus() + ")");
                    }
                    afterUnwrap(r);
                    break;
            }
        }
        return total == 0 && inboundClosed && dst.hasRemaining() ? -1 : total;
    }

    /**
     * Post-handshake messages (TLS 1.3 KeyUpdate, session tickets) may need tasks or an answer. On
     * TLS 1.2 there are none but a renegotiation the client starts (a ClientHello), which is refused:
     * JSSE would complete any number of them, each a full handshake's CPU after --handshake-timeout
     * no longer applies (nbdkit drops such a client too).
     */
    private void afterUnwrap(SSLEngineResult r) throws IOException {
        SSLEngineResult.HandshakeStatus hs = r.getHandshakeStatus();
        if (hs != SSLEngineResult.HandshakeStatus.NOT_HANDSHAKING && hs != SSLEngineResult.HandshakeStatus.FINISHED
                && !"TLSv1.3".equals(engine.getSession().getProtocol())) {
            throw new SSLException("the client started a TLS renegotiation, which is not supported");
        }
        if (hs == SSLEngineResult.HandshakeStatus.NEED_TASK) {
            runTasks();
            hs = engine.getHandshakeStatus();
        }
        if (hs == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
            wrapControl();
        }
    }

    private int drainAppIn(ByteBuffer dst) {
        appIn.flip();
        int n = Math.min(appIn.remaining(), dst.remaining());
        int limit = appIn.limit();
        appIn.limit(appIn.position() + n);
        dst.put(appIn);
        appIn.limit(limit);
        appIn.compact();
        return n;
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        checkUsable();
        int consumed = 0;
            while (src.hasRemaining()) {
                SSLEngineResult r = engine.wrap(src, netOut);
                consumed += r.bytesConsumed();
                switch (r.getStatus()) {
                    case BUFFER_OVERFLOW:
                        if (netOut.position() == 0) {
                            throw new SSLException("a TLS record does not fit " + netOut.capacity() + " bytes");
                        }
                        flushNetOut();
                        break;
                    case CLOSED:
                        throw new SSLException("the TLS session is closed");
                    default:
                        if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK) {
                            runTasks();
                        }
                        if (r.bytesConsumed() == 0 && r.bytesProduced() == 0) {
                            // Only a renegotiation (TLS 1.2) stalls application data; Strata does not take part in one.
                            throw new SSLException("TLS renegotiation is not supported");
                        }
                        if (netOut.remaining() < packetSize) {
                            flushNetOut();
                        }
                }
            }
        flushNetOut();
        return consumed;
    }

    @Override
    public boolean isOpen() {
        return net.isOpen();
    }

    /**
     * Sends close_notify (NBD spec: the server shuts the TLS session down before closing) with one
     * write attempt on {@code out}, the socket: a peer that stopped reading does not hold the close.
     */
    void shutdown(WritableByteChannel out) {
        if (released) {
            return;
        }
        try {
            engine.closeOutbound();
            while (engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP
                    && engine.wrap(EMPTY, netOut).getStatus() == SSLEngineResult.Status.OK) {
                // queue the alert
            }
            netOut.flip();
            out.write(netOut);
        } catch (IOException | RuntimeException ignored) {
            // the peer is gone; closing is all that is left
        } finally {
            netOut.clear();
        }
    }

    /** Closes the network channel and frees the buffers (see {@link #shutdown} for a clean end). */
    @Override
    public void close() throws IOException {
        release();
        net.close();
    }
}
