package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * When a connection waits for more requests before sleeping on its socket ({@link BatchWait}): clients
 * are played as batch sizes and the times they arrive at.
 */
class BatchWaitTest {
    private final BatchWait wait = new BatchWait(NbdServer.Options.DEFAULT_BATCH_WAIT);
    private long now = 1_000_000_000L;

    @BeforeEach
    void firstBatchStartsTheClock() {
        assertFalse(batch(1, 0));
    }

    /** One batch of {@code requests} 4 KiB reads, {@code gapNanos} after the last; whether a wait follows it. */
    private boolean batch(int requests, long gapNanos) {
        now += gapNanos;
        wait.batchRead(requests, requests * 4096L, now);
        return wait.waitNow();
    }

    /**
     * Plays the two probes: without waits the client sends {@code without} requests a batch every
     * {@code gapWithout} ns, with them {@code with} every {@code gapWith}. Returns the decision (whether
     * the run that follows waits) and checks the probe with waits lasted as long as the one without, or
     * {@link BatchWait#PROBE_BATCHES} batches.
     */
    private boolean probes(int without, long gapWithout, int with, long gapWith) {
        for (int i = 0; i < BatchWait.PROBE_BATCHES - 1; i++) {
            assertFalse(batch(without, gapWithout), "no waits in the first probe (batch " + i + ")");
        }
        assertTrue(batch(without, gapWithout), "the second probe waits");
        long expected = Math.min(BatchWait.PROBE_BATCHES, -Math.floorDiv(-BatchWait.PROBE_BATCHES * gapWithout, gapWith));
        for (int i = 1; i < expected; i++) {
            assertTrue(batch(with, gapWith), "waits in the second probe (batch " + i + ")");
            assertFalse(wait.running());
        }
        boolean decision = batch(with, gapWith);
        assertTrue(wait.running(), "decided after " + expected + " batches");
        return decision;
    }

    /** Plays a run (the batches after a decision); returns its length in batches. */
    private int run(int requests, long gap, boolean waits) {
        int n = 0;
        while (wait.running()) {
            boolean w = batch(requests, gap);
            n++;
            if (wait.running()) {
                assertEquals(waits, w, "run batch " + n);
            } else {
                assertFalse(w, "probing again, without waits first");
            }
        }
        return n;
    }

    /** Plays the probes until waits are on: two in a row must find them faster; the first is followed by one probe's worth of batches. */
    private void turnOn(int without, long gapWithout, int with, long gapWith) {
        assertFalse(probes(without, gapWithout, with, gapWith), "one faster probe is not enough");
        assertEquals(BatchWait.PROBE_BATCHES, run(without, gapWithout, false), "a short run before confirming");
        assertTrue(probes(without, gapWithout, with, gapWith));
    }

    @Test
    void keepsWaitingForABusyClientWhoseBatchesGrow() {
        // Queue depth 32: 1.2 requests every 15 us without waits; 7 every 70 us with them (100k/s against 80k/s).
        turnOn(2, 25_000, 7, 70_000);
        assertEquals(BatchWait.PROBE_BATCHES * BatchWait.RUN_PROBES, run(7, 70_000, true));
        assertTrue(probes(2, 25_000, 7, 70_000), "one faster probe keeps them on");
        assertEquals(20_000, wait.nanos());
    }

    @Test
    void stopsWaitingForAClientWhoseWholeQueueIsOneBatch() {
        // Queue depth 4: 4 requests every 60 us without waits; with them still 4, but every 150 us. The
        // probe with waits stops as soon as it has lasted as long as the one without.
        assertFalse(probes(4, 60_000, 4, 150_000));
        run(4, 60_000, false);
        // The client changes (many requests in flight now): the next probes find it.
        turnOn(2, 25_000, 7, 70_000);
        assertEquals(BatchWait.PROBE_BATCHES * BatchWait.RUN_PROBES, run(7, 70_000, true));
        // And back: one slower probe turns them off.
        assertFalse(probes(4, 60_000, 4, 150_000));
    }

    @Test
    void aProbeDisturbedOnceDoesNotTurnWaitsOn() {
        // Queue depth 4, but the probe without waits lost its CPU for a while (half the rate).
        assertFalse(probes(4, 120_000, 4, 110_000));
        assertEquals(BatchWait.PROBE_BATCHES, run(4, 60_000, false));
        assertFalse(probes(4, 60_000, 4, 150_000));
    }

    @Test
    void runsGrowWhileTheDecisionStaysTheSame() {
        turnOn(2, 25_000, 7, 70_000);
        int expected = BatchWait.PROBE_BATCHES * BatchWait.RUN_PROBES;
        assertEquals(expected, run(7, 70_000, true));
        for (int i = 0; i < 3; i++) {
            assertTrue(probes(2, 25_000, 7, 70_000));
            expected = Math.min(2 * expected, BatchWait.PROBE_BATCHES * BatchWait.MAX_RUN_PROBES);
            assertEquals(expected, run(7, 70_000, true), "run " + i);
        }
        assertEquals(BatchWait.PROBE_BATCHES * BatchWait.MAX_RUN_PROBES, expected, "capped");
        assertFalse(probes(4, 60_000, 4, 150_000)); // a new decision: back to the shortest run
        assertEquals(BatchWait.PROBE_BATCHES * BatchWait.RUN_PROBES, run(4, 60_000, false));
    }

    @Test
    void aConfirmingRunDoesNotShortenTheRuns() {
        // Queue depth 4: the first probe was disturbed (waits looked faster), the next ones are not.
        assertFalse(probes(4, 120_000, 4, 110_000));
        assertEquals(BatchWait.PROBE_BATCHES, run(4, 60_000, false));
        assertFalse(probes(4, 60_000, 4, 150_000));
        int expected = BatchWait.PROBE_BATCHES * BatchWait.RUN_PROBES * 2; // the same decision as the start's (no waits)
        assertEquals(expected, run(4, 60_000, false));
    }

    @Test
    void aGainWithinTheMarginIsNotEnough() {
        assertFalse(probes(4, 100_000, 4, 97_000)); // 3 % faster with waits
    }

    @Test
    void neverAfterOneRequestOrLargeOnes() {
        turnOn(2, 25_000, 7, 70_000);
        assertFalse(batch(1, 30_000), "queue depth 1");
        now += 1000;
        wait.batchRead(4, 4L << 20, now); // 1 MiB reads: the copies are the cost
        assertFalse(wait.waitNow());
        now += 1000;
        wait.batchRead(4, 4 * (64L << 10) + 1, now);
        assertFalse(wait.waitNow());
        assertTrue(batch(4, 30_000));
        assertFalse(wait.waitNow(), "once between two batches: then on the socket");
    }

    @Test
    void zeroTurnsItOff() {
        BatchWait off = new BatchWait(Duration.ZERO);
        for (int i = 0; i < 4 * BatchWait.PROBE_BATCHES; i++) {
            off.batchRead(16, 16 * 4096, i * 1000L);
            assertFalse(off.waitNow());
        }
    }

    @Test
    void optionsRefuseNegativeAndOverlongWaits() {
        NbdServer.Options d = NbdServer.Options.defaults();
        assertEquals(NbdServer.Options.DEFAULT_BATCH_WAIT, d.batchWait());
        assertEquals(Duration.ZERO, d.withBatchWait(Duration.ZERO).batchWait());
        assertEquals(Duration.ofMillis(1), d.withBatchWait(Duration.ofMillis(1)).batchWait());
        assertThrows(IllegalArgumentException.class, () -> d.withBatchWait(Duration.ofNanos(-1)));
        assertThrows(IllegalArgumentException.class, () -> d.withBatchWait(Duration.ofMillis(2)));
    }
}
