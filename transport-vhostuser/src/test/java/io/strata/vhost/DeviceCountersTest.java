package io.strata.vhost;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.metrics.ErrorKind;
import io.strata.core.metrics.ExportCounters;
import io.strata.core.metrics.RequestType;
import org.junit.jupiter.api.Test;

/**
 * The socket's device counters ({@link VhostUserServer#counters}, what the Prometheus exporter
 * reports for a vhost-user export) after known traffic from a test front-end: every request once
 * by type, bytes as read into guest memory, errors by kind, one latency observation per request,
 * nothing left in flight, the session counted while open and after.
 */
class DeviceCountersTest extends BackEndFixture {
    @Test
    void countsEveryRequestByTypeErrorKindAndLatency() throws Exception {
        ExportCounters counters = server.counters();
        int reads = 25;
        try (TestFrontEnd fe = new TestFrontEnd(socket)) {
            fe.setUp(true);
            await(() -> counters.connectionsOpen() == 1, 5000, () -> "the session counted as open");
            for (int i = 0; i < reads; i++) {
                assertReads(fe, i * 8L, 4096);
            }
            fe.submit(fe.request(VirtioBlk.T_GET_ID, 0, 20));
            fe.awaitUsed(5000);
            fe.submit(fe.request(VirtioBlk.T_FLUSH, 0, 0));
            fe.awaitUsed(5000);
            fe.submit(fe.request(VirtioBlk.T_OUT, 0, 512));
            fe.awaitUsed(5000);
            assertEquals(VirtioBlk.S_IOERR, fe.status());
            fe.submit(fe.request(77, 0, 512));
            fe.awaitUsed(5000);
            assertEquals(VirtioBlk.S_UNSUPP, fe.status());
            fe.submit(fe.request(VirtioBlk.T_IN, 2047, 1024)); // past the end
            fe.awaitUsed(5000);
            assertEquals(VirtioBlk.S_IOERR, fe.status());
            fe.submit(fe.request(VirtioBlk.T_IN, 0, 100)); // not whole sectors
            fe.awaitUsed(5000);
            assertEquals(VirtioBlk.S_IOERR, fe.status());
        }
        await(() -> counters.connectionsOpen() == 0, 5000, () -> "the session counted as closed");
        assertEquals(1, counters.connectionsTotal());
        assertEquals(reads + 2, counters.requests(RequestType.READ));
        assertEquals(reads * 4096L, counters.bytes(RequestType.READ));
        assertEquals(1, counters.requests(RequestType.GET_ID));
        assertEquals(20, counters.bytes(RequestType.GET_ID));
        assertEquals(1, counters.requests(RequestType.FLUSH));
        assertEquals(1, counters.requests(RequestType.WRITE));
        assertEquals(1, counters.requests(RequestType.OTHER));
        assertEquals(reads + 6, counters.requests());
        assertEquals(1, counters.errors(ErrorKind.READ_ONLY));
        assertEquals(1, counters.errors(ErrorKind.UNSUPPORTED));
        assertEquals(1, counters.errors(ErrorKind.OUT_OF_RANGE));
        assertEquals(1, counters.errors(ErrorKind.INVALID_REQUEST));
        assertEquals(4, counters.errors());
        assertEquals(reads + 2, counters.latency(RequestType.READ).count());
        assertTrue(counters.latency(RequestType.READ).sumNanos() > 0);
        assertEquals(0, counters.inFlight());
    }
}
