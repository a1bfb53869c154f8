package io.strata.vhost;

import io.strata.core.os.LibC;
import io.strata.core.os.Native;

/**
 * What the front-end has told the session about one queue (SET_VRING_*), owned by the session
 * thread. The queue's worker never reads it: when the worker starts it gets an immutable
 * {@link Virtqueue} built from this state, and every change here is made with the worker stopped
 * (its ring position read back first), then the worker is started again from a new snapshot.
 */
final class Vring {
    final int index;
    int size;
    long descUva;
    long availUva;
    long usedUva;
    boolean addressesSet;
    /** The next avail index to serve (SET_VRING_BASE; where the last worker stopped). */
    int base;
    int kickFd = -1;
    int callFd = -1;
    int errFd = -1;
    boolean enabled;
    /**
     * The worker stopped on a guest error (a broken avail ring, a request with no status byte to
     * complete it with): the queue stays stopped until the front-end resets it (GET_VRING_BASE,
     * SET_VRING_BASE), whatever else changes.
     */
    boolean broken;
    /** Set when a worker was stopped for a change, so that its restart is not logged as a start. */
    boolean restarting;
    /**
     * The queue resumes where a previous back-end left requests in flight: it may have put one in
     * the used ring and died before signalling the guest, which would then wait for that interrupt
     * forever. The next worker signals the call fd once when it starts (a spurious interrupt costs
     * the driver one look at its used ring). libvhost-user kicks itself after a reconnect for the
     * same reason (vu_check_queue_inflights).
     */
    boolean interruptOnStart;
    /**
     * The next worker must first settle the inflight region's record of this queue and serve again
     * what a previous back-end (or worker) left in flight ({@link InflightRegion#resume}): set by
     * SET_VRING_BASE and whenever a worker stops.
     */
    boolean resume;
    /** The running worker, or null. */
    QueueWorker worker;

    Vring(int index) {
        this.index = index;
    }

    boolean ready() {
        return enabled && addressesSet && kickFd >= 0 && size > 0 && !broken;
    }

    static int replaceFd(int old, int fd) {
        if (old >= 0) {
            Native.libc().close(old);
        }
        return fd;
    }

    void closeFds() {
        LibC libc = Native.libc();
        for (int fd : new int[] {kickFd, callFd, errFd}) {
            if (fd >= 0) {
                libc.close(fd);
            }
        }
        kickFd = -1;
        callFd = -1;
        errFd = -1;
    }
}
