package io.strata.vhost;

/**
 * The device behind the vhost-user protocol, the one seam between them (libvhost-user draws the same
 * line with its VuDevIface): {@link Session} handles messages, the memory table, the vrings and the
 * inflight region and knows nothing of virtio-blk but these methods; {@link VirtioBlk} knows nothing
 * of vhost-user.
 */
interface VirtioDevice {
    /** The device's own virtio feature bits; the session adds the ring and transport bits. */
    long features();

    /** The device configuration space that GET_CONFIG reads from. */
    byte[] config();

    /** A handler for one queue's requests, used only by that queue's worker thread (it may keep scratch state). */
    RequestHandler newHandler(String name);

    /** Serves the requests of one queue. Both methods return the used length to publish, or {@link #CANNOT_COMPLETE}. */
    interface RequestHandler {
        /** There is no safe place to report the request's outcome: the queue must stop, not complete it. */
        int CANNOT_COMPLETE = -1;

        /** Serves a chain that {@link DescriptorChain#load} accepted, waiting for whatever it needs loaded. */
        int handle(DescriptorChain chain);

        /**
         * True when serving the chain now would wait for a chunk to load (a hint, read without
         * pinning). The queue worker then hands the chain to a loader thread, which serves it with
         * {@link #handle} on a handler of its own, and goes on with the requests behind it.
         */
        default boolean wouldWait(DescriptorChain chain) {
            return false;
        }

        /**
         * Fails a chain that was rejected; {@code lastByte} is the host address of the chain's last byte when
         * it is a device-writable byte in guest memory ({@link DescriptorChain#findLastByte}), else 0.
         */
        int reject(long lastByte);
    }
}
