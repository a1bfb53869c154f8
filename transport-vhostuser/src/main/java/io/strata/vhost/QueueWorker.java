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
 */
final class QueueWorker implements Runnable {
    private static final Logger LOG = LoggerFactory.getLogger(QueueWorker.class);

    private final Virtqueue queue;
    private final MemoryTable memory;
    private final VirtioBlk blk;
    private final InflightRegion inflight;
    private final String name;
    private final DescriptorChain chain;
    private final LibC libc = Native.libc();
    private final int stopFd;
    private final NativeBuffer scratch = NativeBuffer.allocate(8);
    private final Thread thread;
    private volatile boolean stopping;
    private final java.util.concurrent.atomic.AtomicLongArray requestCounters;

    QueueWorker(Virtqueue queue, MemoryTable memory, VirtioBlk blk, InflightRegion inflight, String name,
                java.util.concurrent.atomic.AtomicLongArray requestCounters) throws IOException {
        this.requestCounters = requestCounters;
        this.queue = queue;
        this.memory = memory;
        this.blk = blk;
        this.inflight = inflight;
        this.name = name;
        this.chain = new DescriptorChain(Math.max(64, 2 * queue.size + 16));
        this.stopFd = Native.check(libc.eventfd(0, LibC.EFD_CLOEXEC), "eventfd");
        this.thread = new Thread(this, name);
        this.thread.setDaemon(true);
    }

    void start() {
        thread.start();
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
        int[] fds = {queue.kickFd, LibC.POLLIN, stopFd, LibC.POLLIN};
        try {
            process(); // requests may already be waiting (a restart, or a kick before we listened)
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
                    libc.read(queue.kickFd, scratch.address(), 8); // clears the eventfd counter
                    process();
                }
            }
        } catch (BadChainException e) {
            LOG.error("{}: the avail ring is broken ({}); the queue stops until the guest resets the device", name, e.getMessage());
        } catch (IOException | RuntimeException e) {
            LOG.error("{}: stopped: {}", name, e.toString());
        }
    }

    private void process() throws BadChainException {
        for (;;) {
            int oldUsed = queue.usedIdx;
            int handled = 0;
            int head;
            while (!stopping && (head = queue.nextHead()) >= 0) {
                if (inflight != null) {
                    inflight.begin(queue.index, head);
                }
                int len;
                try {
                    chain.load(queue, memory, head);
                    len = blk.handle(chain);
                } catch (BadChainException e) {
                    LOG.warn("{}: request {} rejected: {}", name, head, e.getMessage());
                    len = 0;
                }
                queue.putUsed(head, len);
                queue.publishUsed();
                if (inflight != null) {
                    inflight.end(queue.index, head, queue.usedIdx);
                }
                handled++;
            }
            if (handled > 0) {
                requestCounters.addAndGet(queue.index, handled);
            }
            if (queue.eventIdx) {
                queue.setAvailEvent();
            }
            if (handled > 0 && queue.needsNotify(oldUsed)) {
                queue.notifyGuest();
            }
            // With EVENT_IDX the driver may have added requests before it saw avail_event: look again.
            if (stopping || handled == 0 || NativeMemory.getU16Acquire(queue.avail + Virtqueue.AVAIL_IDX) == queue.lastAvail) {
                return;
            }
        }
    }
}
