package io.strata.core.metrics;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * What one export did on one transport (an NBD export, a vhost-user socket): requests and bytes by
 * type, errors by kind, latency by type, requests in flight, connections. The transport counts; the
 * Prometheus exporter and the metrics log line read the sums when asked, so counting is a few
 * {@link LongAdder} increments per request and allocates nothing. Plain Java on purpose: neither
 * the core nor the transports depend on a metrics library.
 *
 * <p>A request is counted once, when it is answered ({@link #answered} or {@link #failed}), with the
 * time since the transport took it from the client; {@link #received} and {@link #abandoned} (a
 * client gone before its answers) keep {@link #inFlight} true.
 */
public final class ExportCounters {
    private static final int TYPES = RequestType.values().length;
    private static final int KINDS = ErrorKind.values().length;

    private final LongAdder[] requests = adders(TYPES);
    private final LongAdder[] bytes = adders(TYPES);
    private final LongAdder[] errors = adders(KINDS);
    private final LatencyHistogram[] latency = new LatencyHistogram[TYPES];
    private final LongAdder inFlight = new LongAdder();
    private final AtomicLong connectionsOpen = new AtomicLong();
    private final LongAdder connectionsTotal = new LongAdder();

    public ExportCounters() {
        for (int i = 0; i < TYPES; i++) {
            latency[i] = new LatencyHistogram();
        }
    }

    private static LongAdder[] adders(int n) {
        LongAdder[] a = new LongAdder[n];
        for (int i = 0; i < n; i++) {
            a[i] = new LongAdder();
        }
        return a;
    }

    /** {@code n} requests taken from a client, not answered yet. */
    public void received(int n) {
        inFlight.add(n);
    }

    /** A request answered without error, {@code bytes} moved (a read's data; 0 for a flush), {@code nanos} after it was received. */
    public void answered(RequestType type, long byteCount, long nanos) {
        requests[type.ordinal()].increment();
        bytes[type.ordinal()].add(byteCount);
        latency[type.ordinal()].observeNanos(nanos);
        inFlight.decrement();
    }

    /** A request answered with an error. */
    public void failed(RequestType type, ErrorKind kind, long nanos) {
        requests[type.ordinal()].increment();
        errors[kind.ordinal()].increment();
        latency[type.ordinal()].observeNanos(nanos);
        inFlight.decrement();
    }

    /** {@code n} requests received and never answered: their client went away first. */
    public void abandoned(long n) {
        inFlight.add(-n);
    }

    public void connectionOpened() {
        connectionsOpen.incrementAndGet();
        connectionsTotal.increment();
    }

    public void connectionClosed() {
        connectionsOpen.decrementAndGet();
    }

    /** Requests of this type answered (with or without error). */
    public long requests(RequestType type) {
        return requests[type.ordinal()].sum();
    }

    /** Requests answered, every type. */
    public long requests() {
        long n = 0;
        for (LongAdder a : requests) {
            n += a.sum();
        }
        return n;
    }

    /** Bytes moved by requests of this type answered without error. */
    public long bytes(RequestType type) {
        return bytes[type.ordinal()].sum();
    }

    public long errors(ErrorKind kind) {
        return errors[kind.ordinal()].sum();
    }

    /** Errors, every kind. */
    public long errors() {
        long n = 0;
        for (LongAdder a : errors) {
            n += a.sum();
        }
        return n;
    }

    /** Latency of requests of this type, from receipt to answer. */
    public LatencyHistogram latency(RequestType type) {
        return latency[type.ordinal()];
    }

    /** Requests received and not yet answered. */
    public long inFlight() {
        return inFlight.sum();
    }

    /** Client connections (NBD) or front-end sessions (vhost-user) open now. */
    public long connectionsOpen() {
        return connectionsOpen.get();
    }

    public long connectionsTotal() {
        return connectionsTotal.sum();
    }
}
