package io.strata.nbd;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/** Counters of one NBD server, for the periodic metrics line and tests. */
public final class ServerMetrics {
    final AtomicLong connectionsOpen = new AtomicLong();
    final LongAdder connectionsTotal = new LongAdder();
    final LongAdder requests = new LongAdder();
    final LongAdder bytesRead = new LongAdder();
    final LongAdder errors = new LongAdder();
    /** Requests read from clients; with {@link #requests} (answered) and {@link #dropped}, what is pending. */
    final LongAdder received = new LongAdder();
    /** Requests read but never answered because their connection ended first. */
    final LongAdder dropped = new LongAdder();
    /** Connections refused because --max-connections were open. */
    final LongAdder refused = new LongAdder();

    /** A snapshot. */
    public record Snapshot(long connectionsOpen, long connectionsTotal, long requests, long bytesRead, long errors,
            long pending, long refused) {
        @Override
        public String toString() {
            return "connections=" + connectionsOpen + " (total " + connectionsTotal + ", refused " + refused + ") requests="
                    + requests + " pending=" + pending + " bytes_read=" + bytesRead + " errors=" + errors;
        }
    }

    public Snapshot snapshot() {
        long answered = requests.sum();
        return new Snapshot(connectionsOpen.get(), connectionsTotal.sum(), answered, bytesRead.sum(), errors.sum(),
                received.sum() - answered - dropped.sum(), refused.sum());
    }

    /** Requests read from clients and not yet answered (nor dropped with their connection). */
    public long pendingRequests() {
        return received.sum() - requests.sum() - dropped.sum();
    }
}
