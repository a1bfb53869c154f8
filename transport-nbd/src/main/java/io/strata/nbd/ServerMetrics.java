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

    /** A snapshot. */
    public record Snapshot(long connectionsOpen, long connectionsTotal, long requests, long bytesRead, long errors) {
        @Override
        public String toString() {
            return "connections=" + connectionsOpen + " (total " + connectionsTotal + ") requests=" + requests
                    + " bytes_read=" + bytesRead + " errors=" + errors;
        }
    }

    public Snapshot snapshot() {
        return new Snapshot(connectionsOpen.get(), connectionsTotal.sum(), requests.sum(), bytesRead.sum(), errors.sum());
    }
}
