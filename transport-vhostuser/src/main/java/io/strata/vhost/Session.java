package io.strata.vhost;

import static io.strata.vhost.VhostUserProtocol.*;

import io.strata.core.os.Native;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLongArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One vhost-user session (one connected front-end), the protocol half of the back-end: message
 * dispatch, feature negotiation, the memory table, the vrings and their workers, the inflight region.
 * The device behind it is a {@link VirtioDevice}. Everything it maps, opens or starts is released when
 * the session ends, however it ends.
 *
 * <p>Ring state a worker reads is changed only with that worker stopped ({@link #stop}), then the
 * worker is started again from a fresh snapshot ({@link #maybeStart}): features, ring addresses,
 * size, base, kick/call/err fds, the memory table and the inflight region alike.
 *
 * <p>A message the back-end refuses (a field out of range, a table that does not add up) ends the
 * session with one log line naming message, field and value; a request that asked for REPLY_ACK
 * gets a failure reply first. Nothing of the refused message is applied.
 */
final class Session {
    private static final Logger LOG = LoggerFactory.getLogger(Session.class);

    /** Ring and transport features the session offers on top of the device's own. */
    static final long TRANSPORT_FEATURES = 1L << VIRTIO_F_VERSION_1 | 1L << VIRTIO_RING_F_EVENT_IDX
            | 1L << VIRTIO_RING_F_INDIRECT_DESC | 1L << VHOST_USER_F_PROTOCOL_FEATURES;
    static final long OFFERED_PROTOCOL = 1L << PROTOCOL_F_MQ | 1L << PROTOCOL_F_REPLY_ACK | 1L << PROTOCOL_F_CONFIG
            | 1L << PROTOCOL_F_INFLIGHT_SHMFD;

    private final String name;
    private final MessageChannel channel;
    private final VirtioDevice device;
    private final long offeredFeatures;
    private final Vring[] vrings;
    private final Message m = new Message();
    private final long[] rings = new long[3];
    private final AtomicLongArray requestsPerQueue;
    /** Loader threads for reads that wait for a chunk load (the server's, shared); null: none, serve all in the workers. */
    private final java.util.concurrent.Executor loaders;
    private long features;
    private long protocolFeatures;
    private boolean owned;
    private MemoryTable memory = MemoryTable.empty();
    private InflightRegion inflight;

    Session(String name, int socketFd, VirtioDevice device, int maxQueues, AtomicLongArray requestsPerQueue) {
        this(name, socketFd, device, maxQueues, requestsPerQueue, null);
    }

    Session(String name, int socketFd, VirtioDevice device, int maxQueues, AtomicLongArray requestsPerQueue,
            java.util.concurrent.Executor loaders) {
        this.loaders = loaders;
        this.requestsPerQueue = requestsPerQueue;
        this.name = name;
        this.channel = new MessageChannel(socketFd);
        this.device = device;
        this.offeredFeatures = device.features() | TRANSPORT_FEATURES;
        this.vrings = new Vring[maxQueues];
        for (int i = 0; i < maxQueues; i++) {
            vrings[i] = new Vring(i);
        }
    }

    /** Serves messages until the front-end leaves or breaks the protocol; returns why it ended. */
    String run() {
        try {
            for (;;) {
                channel.receive(m);
                try {
                    dispatch();
                } catch (VhostUserException e) {
                    nack(); // the front-end that asked for an ack learns the request failed, then the session ends
                    throw e;
                } finally {
                    MessageChannel.closeFds(m); // fds nobody took
                }
            }
        } catch (EOFException e) {
            return "front-end disconnected";
        } catch (VhostUserException e) {
            return "protocol error: " + e.getMessage();
        } catch (IOException | RuntimeException e) {
            return "failed: " + e;
        } finally {
            release();
        }
    }

    private boolean has(int protocolFeature) {
        return (protocolFeatures & (1L << protocolFeature)) != 0;
    }

    private void dispatch() throws IOException {
        switch (m.request) {
            case GET_FEATURES:
                replyU64(offeredFeatures);
                return;
            case SET_FEATURES:
                setFeatures();
                ack();
                return;
            case GET_PROTOCOL_FEATURES:
                replyU64(OFFERED_PROTOCOL);
                return;
            case SET_PROTOCOL_FEATURES:
                m.requireSize(8);
                protocolFeatures = m.u64(0) & OFFERED_PROTOCOL;
                ack();
                return;
            case SET_OWNER:
                if (owned) {
                    throw new VhostUserException("a second SET_OWNER in one session");
                }
                owned = true;
                ack();
                return;
            case RESET_OWNER:
                stopAll();
                owned = false;
                ack();
                return;
            case GET_QUEUE_NUM:
                replyU64(vrings.length);
                return;
            case SET_MEM_TABLE:
                setMemTable();
                ack();
                return;
            case SET_VRING_NUM: {
                Vring v = vring();
                int num = m.u32(4);
                if (num <= 0 || num > Virtqueue.MAX_SIZE || Integer.bitCount(num) != 1) {
                    throw new VhostUserException("SET_VRING_NUM " + Integer.toUnsignedString(num) + " for queue " + v.index
                            + " (a power of two up to 32768)");
                }
                stop(v);
                v.size = num;
                maybeStart(v, "SET_VRING_NUM");
                ack();
                return;
            }
            case SET_VRING_ADDR:
                setVringAddr();
                ack();
                return;
            case SET_VRING_BASE: {
                Vring v = vring();
                stop(v);
                v.base = m.u32(4) & 0xffff;
                v.broken = false;
                v.resume = true;
                maybeStart(v, "SET_VRING_BASE");
                ack();
                return;
            }
            case GET_VRING_BASE: {
                Vring v = vring();
                stop(v);
                v.enabled = false;
                v.broken = false;
                v.restarting = false; // the next start is a start, whatever message completes the ring
                v.closeFds();
                LOG.info("{}: queue {} stopped at avail {}", name, v.index, v.base);
                ByteBuffer r = channel.beginReply();
                r.putInt(0, v.index).putInt(4, v.base);
                channel.sendReply(m, 8, -1);
                return;
            }
            case SET_VRING_KICK:
            case SET_VRING_CALL:
            case SET_VRING_ERR:
                setVringFd();
                ack();
                return;
            case SET_VRING_ENABLE: {
                Vring v = vring();
                boolean enable = m.u32(4) != 0;
                if (!enable) {
                    stop(v);
                }
                v.enabled = enable;
                maybeStart(v, null);
                ack();
                return;
            }
            case GET_CONFIG:
                getConfig();
                return;
            case SET_CONFIG:
                ack(); // nothing in a read-only disk's config is writable; accepted and ignored
                return;
            case GET_INFLIGHT_FD:
                getInflightFd();
                return;
            case SET_INFLIGHT_FD:
                setInflightFd();
                ack();
                return;
            default:
                throw new VhostUserException("unsupported " + m);
        }
    }

    /** The queue a per-queue message names in its first u32 (struct vhost_vring_state / vhost_vring_addr). */
    private Vring vring() throws VhostUserException {
        m.requireSize(8);
        int index = m.u32(0);
        if (index < 0 || index >= vrings.length) {
            throw new VhostUserException(requestName(m.request) + " for queue " + Integer.toUnsignedString(index)
                    + ", but only " + vrings.length + " exist (GET_QUEUE_NUM)");
        }
        return vrings[index];
    }

    /**
     * Features may change while rings run (QEMU sets VHOST_F_LOG_ALL this way during migration), so a
     * change never halts the device: running workers stop, and start again seeing the new features.
     */
    private void setFeatures() throws IOException {
        m.requireSize(8);
        long requested = m.u64(0);
        stopAll();
        features = requested & offeredFeatures;
        LOG.info("{}: features 0x{} (event_idx {}, indirect {})", name, Long.toHexString(features),
                (features >> VIRTIO_RING_F_EVENT_IDX & 1) == 1, (features >> VIRTIO_RING_F_INDIRECT_DESC & 1) == 1);
        startAll("SET_FEATURES");
    }

    private void setMemTable() throws IOException {
        MemoryTable next = MemoryTable.map(m);
        for (Vring v : vrings) {
            String why = v.addressesSet ? Virtqueue.translate(next, v.size, v.descUva, v.availUva, v.usedUva, rings) : null;
            if (why != null) {
                next.close();
                throw new VhostUserException("SET_MEM_TABLE: queue " + v.index + ": " + why);
            }
        }
        stopAll();
        memory.close();
        memory = next;
        LOG.info("{}: memory table: {} region(s), {} MiB", name, next.regions(), next.totalBytes() >> 20);
        startAll("SET_MEM_TABLE");
    }

    /** vhost_vring_addr: u32 index, u32 flags, then the guest addresses u64 desc, used, avail, log. */
    private static final int VRING_ADDR_SIZE = 40;

    private void setVringAddr() throws IOException {
        m.requireSize(VRING_ADDR_SIZE);
        Vring v = vring();
        long desc = m.u64(8);
        long used = m.u64(16);
        long avail = m.u64(24);
        if (v.size == 0) {
            throw new VhostUserException("SET_VRING_ADDR for queue " + v.index + " before SET_VRING_NUM");
        }
        String why = Virtqueue.translate(memory, v.size, desc, avail, used, rings);
        if (why != null) {
            throw new VhostUserException("SET_VRING_ADDR for queue " + v.index + ": " + why);
        }
        stop(v);
        v.descUva = desc;
        v.usedUva = used;
        v.availUva = avail;
        v.addressesSet = true;
        maybeStart(v, "SET_VRING_ADDR");
    }

    private void setVringFd() throws IOException {
        m.requireSize(8);
        long value = m.u64(0);
        long index = value & VRING_INDEX_MASK;
        boolean noFd = (value & VRING_NOFD_MASK) != 0;
        if (index >= vrings.length) {
            throw new VhostUserException(requestName(m.request) + " for queue " + index + ", but only " + vrings.length + " exist");
        }
        if (m.request == SET_VRING_KICK && noFd) {
            throw new VhostUserException("queue " + index + ": polling without a kick fd is not supported");
        }
        Vring v = vrings[(int) index];
        int fd = noFd ? -1 : m.takeFd();
        if (!noFd && fd < 0) {
            throw new VhostUserException(requestName(m.request) + " for queue " + index + " came without its fd");
        }
        if (fd >= 0) {
            nonBlocking(fd, requestName(m.request));
        }
        stop(v);
        switch (m.request) {
            case SET_VRING_KICK:
                v.kickFd = Vring.replaceFd(v.kickFd, fd);
                if ((features & (1L << VHOST_USER_F_PROTOCOL_FEATURES)) == 0) {
                    v.enabled = true; // without protocol features a ring starts enabled
                }
                break;
            case SET_VRING_CALL:
                v.callFd = Vring.replaceFd(v.callFd, fd);
                break;
            default:
                v.errFd = Vring.replaceFd(v.errFd, fd);
        }
        maybeStart(v, requestName(m.request));
    }

    /**
     * Makes a kick, call or err fd non-blocking (QEMU's eventfds are already): a front-end may pass a
     * blocking eventfd whose counter it set near its maximum, and the queue worker's write of the
     * guest's interrupt then blocked for ever, and with it the session's stop; or one it drains itself,
     * blocking the worker's read. A write that finds the counter full is then a signal already pending.
     */
    private static void nonBlocking(int fd, String what) throws VhostUserException {
        io.strata.core.os.LibC libc = io.strata.core.os.Native.libc();
        int flags = libc.fcntl(fd, io.strata.core.os.LibC.F_GETFL, 0);
        if (flags < 0 || libc.fcntl(fd, io.strata.core.os.LibC.F_SETFL, flags | io.strata.core.os.LibC.O_NONBLOCK) < 0) {
            libc.close(fd);
            throw new VhostUserException(what + ": its fd cannot be made non-blocking (errno " + io.strata.core.os.Native.errno() + ")");
        }
    }

    /** VhostUserConfig: u32 offset, u32 size, u32 flags, then the bytes; QEMU's limit on them is 256. */
    private static final int CONFIG_HEADER = 12;
    private static final int MAX_CONFIG = 256;

    private void getConfig() throws IOException {
        m.requireSize(CONFIG_HEADER);
        int offset = m.u32(0);
        int size = m.u32(4);
        int flags = m.u32(8);
        if (offset < 0 || size < 0 || size > MAX_CONFIG || offset > MAX_CONFIG - size) {
            throw new VhostUserException("GET_CONFIG offset " + Integer.toUnsignedString(offset) + " size "
                    + Integer.toUnsignedString(size) + " (at most 256 bytes)");
        }
        byte[] config = device.config();
        ByteBuffer r = channel.beginReply();
        r.putInt(0, offset).putInt(4, size).putInt(8, flags);
        for (int i = 0; i < size; i++) {
            int at = offset + i;
            r.put(CONFIG_HEADER + i, at < config.length ? config[at] : 0);
        }
        channel.sendReply(m, CONFIG_HEADER + size, -1);
    }

    /** VhostUserInflight: u64 mmap_size, u64 mmap_offset, u16 num_queues, u16 queue_size, padded to 24 by C. */
    static final int INFLIGHT_MSG_SIZE = 24;
    private static final int INFLIGHT_NUM_QUEUES = 16;
    private static final int INFLIGHT_QUEUE_SIZE = 18;
    /** The fields read: up to queue_size's end. */
    private static final int INFLIGHT_FIELDS = 20;

    private void getInflightFd() throws IOException {
        m.requireSize(INFLIGHT_FIELDS);
        int nq = Short.toUnsignedInt(m.payload.getShort(INFLIGHT_NUM_QUEUES));
        int qs = Short.toUnsignedInt(m.payload.getShort(INFLIGHT_QUEUE_SIZE));
        if (nq == 0 || nq > vrings.length || qs == 0 || qs > Virtqueue.MAX_SIZE) {
            throw new VhostUserException("GET_INFLIGHT_FD for " + nq + " queue(s) of " + qs);
        }
        InflightRegion next = InflightRegion.create(nq, qs);
        stopAll(); // workers write into the region being replaced
        if (inflight != null) {
            inflight.close();
        }
        inflight = next;
        ByteBuffer r = channel.beginReply();
        r.putLong(0, inflight.size).putLong(8, 0).putShort(INFLIGHT_NUM_QUEUES, (short) nq).putShort(INFLIGHT_QUEUE_SIZE, (short) qs);
        channel.sendReply(m, INFLIGHT_MSG_SIZE, inflight.fd);
        LOG.info("{}: inflight region for {} queue(s) of {} ({} bytes)", name, nq, qs, inflight.size);
        startAll("GET_INFLIGHT_FD");
    }

    private void setInflightFd() throws IOException {
        m.requireSize(INFLIGHT_FIELDS);
        long size = m.u64(0);
        long offset = m.u64(8);
        int nq = Short.toUnsignedInt(m.payload.getShort(INFLIGHT_NUM_QUEUES));
        int qs = Short.toUnsignedInt(m.payload.getShort(INFLIGHT_QUEUE_SIZE));
        int fd = m.takeFd();
        if (fd < 0) {
            throw new VhostUserException("SET_INFLIGHT_FD without an fd");
        }
        if (nq == 0 || nq > vrings.length || qs == 0 || qs > Virtqueue.MAX_SIZE) {
            Native.libc().close(fd);
            throw new VhostUserException("SET_INFLIGHT_FD for " + nq + " queue(s) of " + qs);
        }
        InflightRegion next = InflightRegion.map(fd, size, offset, nq, qs);
        stopAll();
        if (inflight != null) {
            inflight.close();
        }
        inflight = next;
        startAll("SET_INFLIGHT_FD");
    }

    /**
     * Starts the queue's worker if the ring is complete and not running, from a snapshot of its state.
     * {@code change} names the message that restarted a running queue (logged at debug), or is null.
     */
    private void maybeStart(Vring v, String change) throws IOException {
        if (v.worker != null || !v.ready() || memory.regions() == 0) {
            return;
        }
        String why = Virtqueue.translate(memory, v.size, v.descUva, v.availUva, v.usedUva, rings);
        if (why != null) {
            throw new VhostUserException("queue " + v.index + " cannot start: " + why);
        }
        boolean eventIdx = (features & (1L << VIRTIO_RING_F_EVENT_IDX)) != 0;
        Virtqueue q = new Virtqueue(v.index, v.size, rings, eventIdx, v.callFd, v.errFd, v.base);
        int[] resubmit = null;
        if (v.resume && inflight != null) {
            InflightRegion.Resumption r = inflight.resume(v.index, q);
            if (r.heads().length > 0) {
                resubmit = r.heads();
                q.lastAvail = (q.usedIdx + resubmit.length) & 0xffff;
                LOG.info("{}: queue {} resumes with {} request(s) a previous back-end left in flight, served again first;"
                        + " the ring is read on from avail {} (used {} + those){}", name, v.index, resubmit.length,
                        q.lastAvail, q.usedIdx, q.lastAvail == v.base ? "" : ", not the front-end's " + v.base);
            }
            v.interruptOnStart |= r.signalGuest();
        }
        v.resume = false;
        String handlerName = name + " queue " + v.index;
        QueueWorker w = new QueueWorker(q, memory, device.newHandler(handlerName), inflight, v.kickFd,
                name + "-q" + v.index, requestsPerQueue, v.interruptOnStart && v.callFd >= 0, loaders,
                () -> device.newHandler(handlerName), resubmit);
        if (v.callFd >= 0) {
            v.interruptOnStart = false;
        }
        v.worker = w;
        w.start();
        if (v.restarting && change != null) {
            LOG.debug("{}: queue {} restarted for {}", name, v.index, change);
        } else {
            LOG.info("{}: queue {} started (size {}, avail {}, used {}{})", name, v.index, q.size, q.lastAvail, q.usedIdx,
                    q.eventIdx ? ", event_idx" : "");
        }
        v.restarting = false;
    }

    private void startAll(String change) throws IOException {
        for (Vring v : vrings) {
            maybeStart(v, change);
        }
    }

    /** Stops the queue's worker, if one runs, and takes back its ring position. */
    private void stop(Vring v) {
        QueueWorker w = v.worker;
        if (w == null) {
            return;
        }
        w.stop();
        v.worker = null;
        v.base = w.queue().lastAvail;
        v.restarting = true;
        v.resume = true; // requests it was to serve again and did not are still marked: the next worker serves them
        if (w.broken()) {
            v.broken = true;
        }
    }

    private void stopAll() {
        for (Vring v : vrings) {
            stop(v);
        }
    }

    private void replyU64(long v) throws IOException {
        ByteBuffer r = channel.beginReply();
        r.putLong(0, v);
        channel.sendReply(m, 8, -1);
    }

    /** REPLY_ACK: answers a request that has no reply of its own when the front-end asked for one. */
    private void ack() throws IOException {
        if (m.needsReply() && has(PROTOCOL_F_REPLY_ACK) && !hasOwnReply(m.request)) {
            replyU64(0);
        }
    }

    /** The failure ack for a refused request; best effort, as the session ends anyway. */
    private void nack() {
        if (m.needsReply() && has(PROTOCOL_F_REPLY_ACK) && !hasOwnReply(m.request)) {
            try {
                replyU64(1);
            } catch (IOException ignored) {
                // the front-end is gone; the session ends with the original error
            }
        }
    }

    private static boolean hasOwnReply(int request) {
        switch (request) {
            case GET_FEATURES:
            case GET_PROTOCOL_FEATURES:
            case GET_QUEUE_NUM:
            case GET_VRING_BASE:
            case GET_CONFIG:
            case GET_INFLIGHT_FD:
                return true;
            default:
                return false;
        }
    }

    private void release() {
        stopAll();
        for (Vring v : vrings) {
            v.closeFds();
        }
        memory.close();
        memory = MemoryTable.empty();
        if (inflight != null) {
            inflight.close();
            inflight = null;
        }
    }
}
