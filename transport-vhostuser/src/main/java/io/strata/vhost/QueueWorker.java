package io.strata.vhost;

import io.strata.core.buffer.NativeBuffer;
import io.strata.core.buffer.NativeMemory;
import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.io.IOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One platform thread per started queue: sleeps in poll(2) on the queue's kick eventfd and a private
 * stop eventfd, serves first what a previous back-end left in flight, drains the avail ring, and
 * interrupts the guest when EVENT_IDX (or the NO_INTERRUPT flag) says it wants one. Stopping writes
 * the stop eventfd: a thread blocked in native code is woken only by data, never by interrupt() or
 * close().
 *
 * <p>Everything it reads is fixed while it runs (its {@link Virtqueue}, memory table, inflight region,
 * kick fd): the session changes ring state only with the worker stopped.
 *
 * <p>A read that needs a chunk loaded is handed to a loader thread (the device's shared pool), and the
 * worker goes on with the requests behind it, so a slow load (a registry round trip) does not hold up
 * reads the cache can answer. The loader serves it with a handler of its own and queues the completion;
 * only this thread writes the used ring, so completions may go out of order, which virtio allows
 * (virtio 1.x 2.7.14, "used buffer notification"; the inflight region tracks each head on its own).
 * At most {@link #MAX_HANDED_OFF} requests per queue wait for loaders; past that a miss is served here.
 *
 * <p>A request is completed only with its status written. A rejected chain is completed with IOERR
 * in its last byte when that byte can be found safely; when it cannot, or the avail ring itself is
 * broken, the queue stops (one log line, the err eventfd signalled) and stays stopped until the
 * front-end resets it, as nothing can tell the guest about that request.
 */
final class QueueWorker implements Runnable {
    private static final Logger LOG = LoggerFactory.getLogger(QueueWorker.class);

    private final Virtqueue queue;
    private final MemoryTable memory;
    private final VirtioDevice.RequestHandler handler;
    private final InflightRegion inflight;
    private final int kickFd;
    private final String name;
    private final DescriptorChain chain;
    private final LibC libc = Native.libc();
    private final int stopFd;
    private final NativeBuffer scratch = NativeBuffer.allocate(8);
    private final Thread thread;
    private volatile boolean stopping;
    /** Set (before the thread ends) when a guest error stopped the queue. */
    private volatile boolean broken;
    private final java.util.concurrent.atomic.AtomicLongArray requestCounters;
    private long rejected;
    /** Signal the guest once at start: a previous back-end may have completed a request it never announced. */
    private final boolean interruptOnStart;

    /**
     * Heads a previous back-end left in flight (see {@link InflightRegion#resume}), served before the
     * ring is read: they are already off the avail ring and still marked in the inflight region.
     */
    private final int[] resubmit;
    private int resubmitted;
    /** Whether the head {@link #nextRequest} returned last came from {@link #resubmit}. */
    private boolean servingAgain;

    /** Requests of one queue that may wait for loaders at once. */
    static final int MAX_HANDED_OFF = 16;
    /** Used length of a request handed to a loader: not completed yet. */
    private static final int HANDED_OFF = -2;
    /** Loader threads for reads that wait for a chunk load; null to serve every request on this thread. */
    private final java.util.concurrent.Executor loaders;
    private final java.util.function.Supplier<VirtioDevice.RequestHandler> moreHandlers;
    /** Handed-off requests not in use (this thread only); made on demand, up to MAX_HANDED_OFF. */
    private final java.util.ArrayDeque<HandedOff> idleHandOffs = new java.util.ArrayDeque<>();
    private int handOffsMade;
    /** Requests with a loader now. */
    private int outstanding;
    /** Requests the loaders have served, for this thread to complete. */
    private final java.util.concurrent.ConcurrentLinkedQueue<HandedOff> served = new java.util.concurrent.ConcurrentLinkedQueue<>();
    /** Written by a loader that queued a served request, to wake this thread. */
    private final int servedFd;

    /** A request a loader serves: its own copy of the chain and its own handler (handlers keep scratch state). */
    private final class HandedOff implements Runnable {
        final DescriptorChain chain;
        final VirtioDevice.RequestHandler handler = moreHandlers.get();
        int usedLength;

        HandedOff(int capacity) {
            chain = new DescriptorChain(capacity);
        }

        @Override
        public void run() {
            try {
                usedLength = handler.handle(chain); // even when stopping: the request is off the ring, the guest waits for it
            } catch (RuntimeException | Error e) {
                LOG.error("{}: request {} failed in a loader", name, chain.head, e);
                usedLength = VirtioDevice.RequestHandler.CANNOT_COMPLETE;
            } finally {
                // Counted before the hand-back and uncounted after the wake-up's write: stop() closes
                // servedFd only when no loader is between the two, or the write could land on
                // whatever next got that fd number (a guest's memfd, a cache file).
                waking.incrementAndGet();
                try {
                    served.add(this);
                    NativeMemory.putLong(wakeBuffer.address(), 1);
                    libc.write(servedFd, wakeBuffer.address(), 8);
                } finally {
                    waking.decrementAndGet();
                }
            }
        }
    }

    private final NativeBuffer wakeBuffer = NativeBuffer.allocate(8);
    /** Loaders between handing a request back and writing servedFd (see {@link HandedOff#run}). */
    private final java.util.concurrent.atomic.AtomicInteger waking = new java.util.concurrent.atomic.AtomicInteger();

    QueueWorker(Virtqueue queue, MemoryTable memory, VirtioDevice.RequestHandler handler, InflightRegion inflight,
                int kickFd, String name, java.util.concurrent.atomic.AtomicLongArray requestCounters,
                boolean interruptOnStart) throws IOException {
        this(queue, memory, handler, inflight, kickFd, name, requestCounters, interruptOnStart, null, null, null);
    }

    /** As above, handing reads that wait for a load to {@code loaders}, served by handlers from {@code moreHandlers}. */
    QueueWorker(Virtqueue queue, MemoryTable memory, VirtioDevice.RequestHandler handler, InflightRegion inflight,
                int kickFd, String name, java.util.concurrent.atomic.AtomicLongArray requestCounters,
                boolean interruptOnStart, java.util.concurrent.Executor loaders,
                java.util.function.Supplier<VirtioDevice.RequestHandler> moreHandlers, int[] resubmit) throws IOException {
        this.resubmit = resubmit == null ? new int[0] : resubmit;
        this.loaders = loaders;
        this.moreHandlers = moreHandlers;
        this.requestCounters = requestCounters;
        this.interruptOnStart = interruptOnStart;
        this.queue = queue;
        this.memory = memory;
        this.handler = handler;
        this.inflight = inflight;
        this.kickFd = kickFd;
        this.name = name;
        this.chain = new DescriptorChain(Math.max(64, 2 * queue.size + 16));
        this.stopFd = Native.check(libc.eventfd(0, LibC.EFD_CLOEXEC), "eventfd");
        this.servedFd = Native.check(libc.eventfd(0, LibC.EFD_CLOEXEC), "eventfd");
        this.thread = new Thread(this, name);
        this.thread.setDaemon(true);
    }

    void start() {
        thread.start();
    }

    Virtqueue queue() {
        return queue;
    }

    /** Whether the queue stopped on a guest error (meaningful after {@link #stop}). */
    boolean broken() {
        return broken;
    }

    /**
     * Stops the thread and waits for it, however long it takes: after this the queue's memory is no
     * longer touched. It waits for the requests its loaders still serve, which write into guest memory
     * the session unmaps next (or a reconnected guest's memory mapped at the same address): a load
     * ends within the registry's per-read deadline, a local one with its read.
     */
    void stop() {
        stopping = true;
        NativeMemory.putLong(scratch.address(), 1);
        libc.write(stopFd, scratch.address(), 8);
        boolean interrupted = false;
        while (thread.isAlive()) {
            try {
                thread.join(STOP_LOG_MILLIS);
            } catch (InterruptedException e) {
                interrupted = true;
            }
            if (thread.isAlive()) {
                LOG.warn("{}: still waiting for {} read(s) to end before the queue's memory can go", name, outstanding);
            }
        }
        while (waking.get() > 0) {
            Thread.yield(); // a loader is a few instructions from its write
        }
        libc.close(servedFd);
        libc.close(stopFd);
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private static final long STOP_LOG_MILLIS = 60_000;

    @Override
    public void run() {
        try {
            serveUntilStopped();
        } finally {
            finishHandedOff();
        }
    }

    private void serveUntilStopped() {
        // pollfd pairs: {fd, events | revents << 16}
        int[] fds = {kickFd, LibC.POLLIN, stopFd, LibC.POLLIN, servedFd, LibC.POLLIN};
        try {
            boolean ok = drain(); // requests may already be waiting (a restart, or a kick before we listened)
            if (interruptOnStart) {
                queue.notifyGuest();
            }
            if (!ok) {
                return;
            }
            while (!stopping) {
                fds[1] = LibC.POLLIN;
                fds[3] = LibC.POLLIN;
                fds[5] = LibC.POLLIN;
                int r = libc.poll(fds, 3, -1);
                if (r < 0) {
                    if (Native.errno() == LibC.EINTR) {
                        continue;
                    }
                    throw new IOException("poll failed: errno " + Native.errno());
                }
                if ((fds[3] >>> 16) != 0 || stopping) {
                    return;
                }
                if ((fds[5] >>> 16) != 0) {
                    libc.read(servedFd, scratch.address(), 8);
                    if (!completeServed()) {
                        return;
                    }
                }
                int kick = fds[1] >>> 16;
                if ((kick & (LibC.POLLERR | LibC.POLLHUP | LibC.POLLNVAL)) != 0) {
                    // Not an eventfd that works (a pipe whose writer is gone polls POLLHUP for ever): a
                    // loop on it would spin a core. The queue stops; the front-end may set a new one.
                    LOG.warn("{}: the kick fd failed (poll events 0x{}); the queue stops", name, Integer.toHexString(kick));
                    return;
                }
                if (kick != 0) {
                    libc.read(kickFd, scratch.address(), 8); // clears the eventfd counter
                    if (!drain()) {
                        return;
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            LOG.error("{}: stopped: {}", name, e.toString());
        }
    }

    /**
     * Serves every request the guest has made available; false when the queue had to stop on a guest
     * error (then it is {@link #broken()}). Package-private for the descriptor-chain fuzz test, which
     * drives it without the thread.
     */
    boolean drain() {
        for (;;) {
            int oldUsed = queue.usedIdx;
            int handled = 0;
            // Requests taken off the ring, those handed to loaders included: progress, for the look again below.
            int taken = 0;
            boolean ok = true;
            int head;
            try {
                while (!stopping && (head = nextRequest()) >= 0) {
                    if (inflight != null && !servingAgain) {
                        inflight.begin(queue.index, head);
                    }
                    taken++;
                    int len = serve(head);
                    if (len == HANDED_OFF) {
                        continue; // a loader has it; completed by completeServed
                    }
                    if (len < 0) { // not completed: the head stays where it came from
                        if (servingAgain) {
                            resubmitted--; // still marked in flight, for whoever resumes the queue
                        } else {
                            queue.unpop();
                            if (inflight != null) {
                                inflight.forget(queue.index, head);
                            }
                        }
                        ok = false;
                        break;
                    }
                    queue.putUsed(head, len);
                    queue.publishUsed();
                    if (inflight != null) {
                        inflight.end(queue.index, head, queue.usedIdx);
                    }
                    handled++;
                }
            } catch (BadChainException e) {
                stopOnGuestError("the avail ring is broken (" + e.getMessage() + ")");
                ok = false;
            }
            if (handled > 0) {
                requestCounters.addAndGet(queue.index, handled);
            }
            if (ok && queue.eventIdx) {
                queue.setAvailEvent();
            }
            if (handled > 0 && queue.needsNotify(oldUsed)) {
                queue.notifyGuest(); // what was completed before the queue stopped still reaches the guest
            }
            // With EVENT_IDX the driver may have added requests before it saw avail_event: look again.
            // Whenever requests were taken (not only completed here): a pass whose requests all went to
            // loaders that did not look again lost the driver's next requests, which it never kicked
            // for (a guest of the soak hung with every request answered and new ones never seen).
            if (!ok || stopping || taken == 0
                    || NativeMemory.getU16Acquire(queue.avail + Virtqueue.AVAIL_IDX) == queue.lastAvail) {
                return ok;
            }
        }
    }

    /** The next head to serve: those left in flight by a previous back-end first, then the avail ring's. */
    private int nextRequest() throws BadChainException {
        servingAgain = resubmitted < resubmit.length;
        return servingAgain ? resubmit[resubmitted++] : queue.nextHead();
    }

    /**
     * Publishes the requests loaders have served, in the order they finished; false when one could
     * not be completed (the queue then stops, as for a request served here).
     */
    private boolean completeServed() {
        int oldUsed = queue.usedIdx;
        int completed = 0;
        boolean ok = true;
        HandedOff h;
        while ((h = served.poll()) != null) {
            outstanding--;
            if (h.usedLength < 0) {
                if (!stopping) {
                    stopOnGuestError("request " + h.chain.head + " cannot be completed");
                    ok = false;
                }
            } else {
                queue.putUsed(h.chain.head, h.usedLength);
                queue.publishUsed();
                if (inflight != null) {
                    inflight.end(queue.index, h.chain.head, queue.usedIdx);
                }
                completed++;
            }
            idleHandOffs.push(h);
        }
        if (completed > 0) {
            requestCounters.addAndGet(queue.index, completed);
            if (queue.needsNotify(oldUsed)) {
                queue.notifyGuest();
            }
        }
        return ok;
    }

    /** At the end: waits for the requests loaders still serve and completes them (they are the guest's). */
    private void finishHandedOff() {
        int[] fds = {servedFd, LibC.POLLIN};
        while (outstanding > 0) {
            fds[1] = LibC.POLLIN;
            libc.poll(fds, 1, 100);
            if ((fds[1] >>> 16) != 0) {
                libc.read(servedFd, scratch.address(), 8);
            }
            completeServed();
        }
    }

    /** Hands the loaded chain to a loader when serving it would wait for a load and a hand-off is free. */
    private boolean handOff() {
        if (loaders == null || !handler.wouldWait(chain)) {
            return false;
        }
        HandedOff h = idleHandOffs.poll();
        if (h == null) {
            if (handOffsMade == MAX_HANDED_OFF) {
                return false; // enough waiting already: serve this one here
            }
            handOffsMade++;
            h = new HandedOff(chain.capacity());
        }
        h.chain.copyFrom(chain);
        outstanding++;
        try {
            loaders.execute(h);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            outstanding--;
            idleHandOffs.push(h);
            return false;
        }
        return true;
    }

    /** One request: the used length to publish, HANDED_OFF, or CANNOT_COMPLETE (the queue then stops). */
    private int serve(int head) {
        String why;
        try {
            chain.load(queue, memory, head);
            if (handOff()) {
                return HANDED_OFF;
            }
            int len = handler.handle(chain);
            if (len >= 0) {
                return len;
            }
            why = "its last descriptor is not a device-writable byte in guest memory";
        } catch (BadChainException e) {
            int len = handler.reject(DescriptorChain.findLastByte(queue, memory, head));
            if (len >= 0) {
                // A guest can send bad chains as fast as good ones: the first and every 1024th are logged.
                if (rejected++ % 1024 == 0) {
                    LOG.warn("{}: request {} rejected: {}; completed with an I/O error ({} so far on this queue)", name,
                            head, e.getMessage(), rejected);
                } else {
                    LOG.debug("{}: request {} rejected: {}", name, head, e.getMessage());
                }
                return len;
            }
            why = e.getMessage() + ", and the chain has no status byte that can be found safely";
        }
        stopOnGuestError("request " + head + " cannot be completed: " + why);
        return VirtioDevice.RequestHandler.CANNOT_COMPLETE;
    }

    private void stopOnGuestError(String why) {
        broken = true;
        LOG.error("{}: {}; the queue stops until the front-end resets it", name, why);
        queue.notifyError();
    }
}
