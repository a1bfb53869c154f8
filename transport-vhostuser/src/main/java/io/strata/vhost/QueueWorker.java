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
 * stop eventfd, drains the avail ring, completes requests in order, and interrupts the guest when
 * EVENT_IDX (or the NO_INTERRUPT flag) says it wants one. Stopping writes the stop eventfd: a thread
 * blocked in native code is woken only by data, never by interrupt() or close().
 *
 * <p>Everything it reads is fixed while it runs (its {@link Virtqueue}, memory table, inflight region,
 * kick fd): the session changes ring state only with the worker stopped.
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

    QueueWorker(Virtqueue queue, MemoryTable memory, VirtioDevice.RequestHandler handler, InflightRegion inflight,
                int kickFd, String name, java.util.concurrent.atomic.AtomicLongArray requestCounters,
                boolean interruptOnStart) throws IOException {
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

    /** Stops the thread and waits for it: after this the queue's memory is no longer touched. */
    void stop() {
        stopping = true;
        NativeMemory.putLong(scratch.address(), 1);
        libc.write(stopFd, scratch.address(), 8);
        try {
            thread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        libc.close(stopFd);
    }

    @Override
    public void run() {
        // pollfd pairs: {fd, events | revents << 16}
        int[] fds = {kickFd, LibC.POLLIN, stopFd, LibC.POLLIN};
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
                int r = libc.poll(fds, 2, -1);
                if (r < 0) {
                    if (Native.errno() == LibC.EINTR) {
                        continue;
                    }
                    throw new IOException("poll failed: errno " + Native.errno());
                }
                if ((fds[3] >>> 16) != 0 || stopping) {
                    return;
                }
                if ((fds[1] >>> 16) != 0) {
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
            boolean ok = true;
            int head;
            try {
                while (!stopping && (head = queue.nextHead()) >= 0) {
                    if (inflight != null) {
                        inflight.begin(queue.index, head);
                    }
                    int len = serve(head);
                    if (len < 0) {
                        queue.unpop(); // not completed: the head stays available (and marked in flight)
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
            if (!ok || stopping || handled == 0
                    || NativeMemory.getU16Acquire(queue.avail + Virtqueue.AVAIL_IDX) == queue.lastAvail) {
                return ok;
            }
        }
    }

    /** One request: the used length to publish, or CANNOT_COMPLETE (the queue then stops). */
    private int serve(int head) {
        String why;
        try {
            chain.load(queue, memory, head);
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
