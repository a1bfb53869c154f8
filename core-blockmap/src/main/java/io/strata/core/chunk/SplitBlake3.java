package io.strata.core.chunk;

import io.strata.core.digest.Blake3;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The BLAKE3 digest of one chunk in 128 KiB pieces, shared with a helper thread while the loading
 * thread is still decompressing: a cold miss then costs about the decompression plus one piece's hash
 * instead of decompression plus the whole hash (issue 10). A piece is a complete subtree of BLAKE3's
 * tree ({@link Blake3#subtree}), so pieces can be hashed in any order on any thread and joined after
 * ({@link Blake3#join}); the result is bit-exact with {@link Blake3#hash}.
 *
 * <p>How the work is shared: the loader publishes how many bytes are decompressed
 * ({@link #published}); the helper claims each piece once it is whole and hashes it; when the
 * decompression is done the loader claims what is left, then waits for the helper's last piece (at
 * most one piece's hash, about 0.1 ms). Claims go through one counter, so no piece is hashed twice.
 * A helper is used only when one is idle and fewer loads are running than there are cores (on a busy
 * machine it would only take a core another load needs); otherwise {@link #begin} says no and the
 * caller hashes the whole chunk itself as before. Helpers are a process-wide pool of
 * {@code cores - 1} daemon threads (none on one core), started on first use.
 *
 * <p>One instance per load workspace: not thread-safe apart from the hand-off to its helper.
 */
final class SplitBlake3 {
    /** Bytes per piece: 128 BLAKE3 chunks, enough lanes for {@code Blake3Lanes} to run vectorised. */
    static final int PIECE = 128 * 1024;
    /** log2 of the BLAKE3 chunks in a piece. */
    static final int PIECE_LOG2 = 7;
    /** Shorter inputs are hashed whole: below two pieces there is nothing to overlap. */
    static final int MIN_LENGTH = 2 * PIECE;
    /** A waiting thread spins this many times before it parks (a piece is decompressed in ~0.1 ms). */
    private static final int SPINS = 2_000;
    /** Parks are bounded, so a lost wake-up costs at most this, never a hang. */
    private static final long PARK_NANOS = TimeUnit.MICROSECONDS.toNanos(50);

    /**
     * {@code -Dstrata.blake3.split=false} turns the split off (every chunk hashed whole, after its
     * decompression): for measuring one against the other (jmh's {@code ReadPathBenchmark -p split=}).
     */
    private static final boolean ENABLED = !"false".equals(System.getProperty("strata.blake3.split"));
    private static final int CORES = Runtime.getRuntime().availableProcessors();
    /** Loads between {@link #begin} and {@link #end}, in every store: helpers only while a core is free. */
    private static final AtomicInteger RUNNING = new AtomicInteger();
    private static volatile Helper[] helpers;

    private final Blake3 blake3 = new Blake3();
    private final byte[] scratch = new byte[PIECE];
    private final int[] pieceCvs;
    private final byte[] out = new byte[Blake3.OUT_LEN];
    private final AtomicInteger nextPiece = new AtomicInteger();
    private final AtomicInteger hashedPieces = new AtomicInteger();
    /** Bytes of the chunk decompressed so far: pieces wholly below it may be hashed. */
    private volatile int ready;
    private volatile boolean abandoned;
    /**
     * The helper's part in this load: {@link #ASSIGNED} at the hand-off, {@link #WORKING} once it has
     * started, {@link #DETACHED} when it will touch the load (slot, piece values) no more. The loader
     * may detach a helper that has not started yet, so it never waits for a helper thread the
     * scheduler has not run.
     */
    private final AtomicInteger helperState = new AtomicInteger(DETACHED);
    private static final int ASSIGNED = 0;
    private static final int WORKING = 1;
    private static final int DETACHED = 2;
    private ByteBuffer data;
    private int length;
    private int pieces;
    private Helper helper;

    /** For chunks of up to {@code maxLength} bytes. */
    SplitBlake3(int maxLength) {
        pieceCvs = new int[8 * Math.max(2, (maxLength + PIECE - 1) / PIECE)];
    }

    /**
     * Starts a split digest of the {@code length} bytes that will be written to {@code data[0..length)},
     * if a helper is idle and a core is free; false (and nothing started) otherwise. After true, the
     * caller must call {@link #end} whatever happens.
     */
    boolean begin(ByteBuffer data, int length) {
        if (!ENABLED || length < MIN_LENGTH || length > PIECE * (pieceCvs.length / 8)) {
            return false;
        }
        if (RUNNING.incrementAndGet() > CORES - 1) {
            RUNNING.decrementAndGet();
            return false;
        }
        Helper h = reserveHelper();
        if (h == null) {
            RUNNING.decrementAndGet();
            return false;
        }
        this.data = data;
        this.length = length;
        this.pieces = (length + PIECE - 1) / PIECE;
        ready = 0;
        abandoned = false;
        nextPiece.set(0);
        hashedPieces.set(0);
        helper = h;
        helperState.set(ASSIGNED);
        h.assign(this);
        return true;
    }

    /** The loader has decompressed {@code bytes} bytes of the chunk (called as they grow). */
    void published(int bytes) {
        ready = bytes;
        Helper h = helper;
        if (h != null) {
            LockSupport.unpark(h.thread);
        }
    }

    /**
     * Called once the whole chunk is decompressed: hashes the pieces the helper has not claimed, waits
     * for its last one, and compares the chunk's hash with {@code expected[at..at+32)}.
     */
    boolean matches(byte[] expected, int at) {
        published(length);
        hashClaimable(blake3, scratch, false);
        if (helperState.compareAndSet(ASSIGNED, DETACHED)) {
            helper.withdraw(this);
        } else {
            // The helper is hashing its last piece (or is done): wait for it.
            for (int spins = 0; hashedPieces.get() != pieces && helperState.get() != DETACHED; spins++) {
                pause(spins);
            }
        }
        if (hashedPieces.get() != pieces) {
            throw new IllegalStateException("the BLAKE3 helper stopped before its piece was hashed");
        }
        blake3.join(pieceCvs, pieces, PIECE_LOG2, out, 0);
        return java.util.Arrays.equals(out, 0, 32, expected, at, at + 32);
    }

    /** Ends the load: stops the helper (if it is still at work on an abandoned load) and waits until it lets go. */
    void end() {
        abandoned = true;
        if (helperState.compareAndSet(ASSIGNED, DETACHED)) {
            helper.withdraw(this);
        } else {
            LockSupport.unpark(helper.thread);
            for (int spins = 0; helperState.get() != DETACHED; spins++) {
                pause(spins);
            }
        }
        helper = null;
        data = null;
        RUNNING.decrementAndGet();
    }

    /**
     * Hashes pieces while there are any to claim. The helper waits for pieces still being
     * decompressed; the loader calls this only when all are decompressed.
     */
    private void hashClaimable(Blake3 hasher, byte[] buffer, boolean waitForMore) {
        int spins = 0;
        while (!abandoned) {
            int p = nextPiece.get();
            if (p >= pieces) {
                return;
            }
            int start = p * PIECE;
            int end = Math.min(start + PIECE, length);
            if (ready < end) {
                if (!waitForMore) {
                    return;
                }
                pause(spins++);
                continue;
            }
            spins = 0;
            if (nextPiece.compareAndSet(p, p + 1)) {
                data.get(start, buffer, 0, end - start);
                hasher.subtree(buffer, 0, end - start, (long) p << PIECE_LOG2, pieceCvs, 8 * p);
                hashedPieces.incrementAndGet();
            }
        }
    }

    /** One step of a wait that lasts about one piece's hash or decompression: spin, then park briefly. */
    private static void pause(int spins) {
        if (spins < SPINS) {
            Thread.onSpinWait();
        } else {
            LockSupport.parkNanos(PARK_NANOS);
        }
    }

    private static Helper reserveHelper() {
        Helper[] hs = helpers;
        if (hs == null) {
            hs = startHelpers();
        }
        for (Helper h : hs) {
            if (h.busy.compareAndSet(false, true)) {
                return h;
            }
        }
        return null;
    }

    private static synchronized Helper[] startHelpers() {
        if (helpers == null) {
            Helper[] hs = new Helper[Math.max(0, Math.min(CORES - 1, 4))];
            for (int i = 0; i < hs.length; i++) {
                hs[i] = new Helper(i);
            }
            helpers = hs;
        }
        return helpers;
    }

    /** How many helper threads this process has (0 before first use or on one core). */
    static int helperCount() {
        Helper[] hs = helpers;
        return hs == null ? 0 : hs.length;
    }

    /** A daemon thread that hashes the pieces of one load at a time, with its own hasher and buffer. */
    private static final class Helper implements Runnable {
        final AtomicBoolean busy = new AtomicBoolean();
        final Thread thread;
        private final Blake3 blake3 = new Blake3();
        private final byte[] scratch = new byte[PIECE];
        /** The load handed to this helper and not yet taken by it. */
        private final java.util.concurrent.atomic.AtomicReference<SplitBlake3> mailbox =
                new java.util.concurrent.atomic.AtomicReference<>();

        Helper(int index) {
            thread = new Thread(this, "strata-blake3-helper-" + index);
            thread.setDaemon(true);
            thread.start();
        }

        void assign(SplitBlake3 l) {
            mailbox.set(l);
            LockSupport.unpark(thread);
        }

        /**
         * A load detached before this thread started on it takes it back: if it was still in the
         * mailbox, the helper is free at once (else this thread frees itself when it finds the load
         * detached).
         */
        void withdraw(SplitBlake3 l) {
            if (mailbox.compareAndSet(l, null)) {
                busy.set(false);
            }
        }

        @Override
        public void run() {
            while (true) {
                SplitBlake3 l = mailbox.getAndSet(null);
                if (l == null) {
                    LockSupport.park(this);
                    continue;
                }
                if (!l.helperState.compareAndSet(ASSIGNED, WORKING)) {
                    busy.set(false); // the loader detached it before this thread got to it
                } else {
                    try {
                        l.hashClaimable(blake3, scratch, true);
                    } catch (RuntimeException | Error e) {
                        // Cannot happen with valid pieces; if it did, the loader must not wait for the
                        // piece this thread claimed: it sees DETACHED with a piece missing and fails.
                        l.abandoned = true;
                    } finally {
                        // Free first, then let go: a loader that waits for DETACHED may begin its next
                        // load at once and find this helper free (the mailbox takes it meanwhile).
                        busy.set(false);
                        l.helperState.set(DETACHED);
                    }
                }
            }
        }
    }
}
