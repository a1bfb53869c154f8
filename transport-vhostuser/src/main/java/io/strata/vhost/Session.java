package io.strata.vhost;

import static io.strata.vhost.VhostUserProtocol.*;

import io.strata.core.device.BlockDevice;
import io.strata.core.os.Native;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One vhost-user session (one connected front-end): message dispatch, feature negotiation, the
 * memory table, the queues and their workers. Everything it maps, opens or starts is released when
 * the session ends, however it ends.
 */
final class Session {
    private static final Logger LOG = LoggerFactory.getLogger(Session.class);

    static final long OFFERED_FEATURES = 1L << VIRTIO_F_VERSION_1 | 1L << VIRTIO_BLK_F_RO | 1L << VIRTIO_BLK_F_BLK_SIZE
            | 1L << VIRTIO_BLK_F_SEG_MAX | 1L << VIRTIO_BLK_F_SIZE_MAX | 1L << VIRTIO_BLK_F_MQ
            | 1L << VIRTIO_RING_F_EVENT_IDX | 1L << VIRTIO_RING_F_INDIRECT_DESC | 1L << VHOST_USER_F_PROTOCOL_FEATURES;
    static final long OFFERED_PROTOCOL = 1L << PROTOCOL_F_MQ | 1L << PROTOCOL_F_REPLY_ACK | 1L << PROTOCOL_F_CONFIG
            | 1L << PROTOCOL_F_INFLIGHT_SHMFD;

    private final String name;
    private final MessageChannel channel;
    private final BlockDevice device;
    private final byte[] serial;
    private final Virtqueue[] queues;
    private final QueueWorker[] workers;
    private final byte[] config;
    private final Message m = new Message();
    private long features;
    private long protocolFeatures;
    private boolean owned;
    private MemoryTable memory = MemoryTable.empty();
    private InflightRegion inflight;

    private final java.util.concurrent.atomic.AtomicLongArray requestsPerQueue;

    Session(String name, int socketFd, BlockDevice device, byte[] serial, int maxQueues,
            java.util.concurrent.atomic.AtomicLongArray requestsPerQueue) {
        this.requestsPerQueue = requestsPerQueue;
        this.name = name;
        this.channel = new MessageChannel(socketFd);
        this.device = device;
        this.serial = serial;
        this.queues = new Virtqueue[maxQueues];
        this.workers = new QueueWorker[maxQueues];
        for (int i = 0; i < maxQueues; i++) {
            queues[i] = new Virtqueue(i);
        }
        this.config = BlkConfig.encode(device.size() / VirtioBlk.SECTOR, device.blockSize(), maxQueues);
    }

    /** Serves messages until the front-end leaves or breaks the protocol; returns why it ended. */
    String run() {
        try {
            for (;;) {
                channel.receive(m);
                try {
                    dispatch();
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
                replyU64(OFFERED_FEATURES);
                return;
            case SET_FEATURES:
                m.requireSize(8);
                features = m.u64(0) & OFFERED_FEATURES;
                for (Virtqueue q : queues) {
                    q.eventIdx = (features & (1L << VIRTIO_RING_F_EVENT_IDX)) != 0;
                }
                LOG.info("{}: features 0x{} (event_idx {}, indirect {})", name, Long.toHexString(features),
                        (features >> VIRTIO_RING_F_EVENT_IDX & 1) == 1, (features >> VIRTIO_RING_F_INDIRECT_DESC & 1) == 1);
                ack(true);
                return;
            case GET_PROTOCOL_FEATURES:
                replyU64(OFFERED_PROTOCOL);
                return;
            case SET_PROTOCOL_FEATURES:
                m.requireSize(8);
                protocolFeatures = m.u64(0) & OFFERED_PROTOCOL;
                ack(true);
                return;
            case SET_OWNER:
                if (owned) {
                    throw new VhostUserException("a second SET_OWNER in one session");
                }
                owned = true;
                ack(true);
                return;
            case RESET_OWNER:
                stopAll();
                owned = false;
                ack(true);
                return;
            case GET_QUEUE_NUM:
                replyU64(queues.length);
                return;
            case SET_MEM_TABLE:
                setMemTable();
                ack(true);
                return;
            case SET_VRING_NUM: {
                Virtqueue q = queue(m.u32(0));
                int num = m.u32(4);
                if (num <= 0 || num > Virtqueue.MAX_SIZE || Integer.bitCount(num) != 1) {
                    throw new VhostUserException("SET_VRING_NUM " + num + " for queue " + q.index + " (a power of two up to 32768)");
                }
                stop(q.index);
                q.size = num;
                ack(true);
                return;
            }
            case SET_VRING_ADDR:
                setVringAddr();
                ack(true);
                return;
            case SET_VRING_BASE: {
                Virtqueue q = queue(m.u32(0));
                stop(q.index);
                q.lastAvail = m.u32(4) & 0xffff;
                if (inflight != null) {
                    int left = inflight.countInflight(q.index);
                    if (left > 0) {
                        LOG.info("{}: queue {} resumes at avail {} with {} request(s) the previous back-end left in flight;"
                                + " they are read from the ring again", name, q.index, q.lastAvail, left);
                    }
                    inflight.clearQueue(q.index);
                }
                ack(true);
                return;
            }
            case GET_VRING_BASE: {
                Virtqueue q = queue(m.u32(0));
                stop(q.index);
                q.enabled = false;
                q.closeFds();
                LOG.info("{}: queue {} stopped at avail {}", name, q.index, q.lastAvail);
                ByteBuffer r = channel.beginReply();
                r.putInt(0, q.index).putInt(4, q.lastAvail);
                channel.sendReply(m, 8, -1);
                return;
            }
            case SET_VRING_KICK:
            case SET_VRING_CALL:
            case SET_VRING_ERR:
                setVringFd();
                ack(true);
                return;
            case SET_VRING_ENABLE: {
                Virtqueue q = queue(m.u32(0));
                boolean enable = m.u32(4) != 0;
                if (!enable) {
                    stop(q.index);
                }
                q.enabled = enable;
                maybeStart(q);
                ack(true);
                return;
            }
            case GET_CONFIG:
                getConfig();
                return;
            case SET_CONFIG:
                ack(true); // nothing in a read-only disk's config is writable; accepted and ignored
                return;
            case GET_INFLIGHT_FD:
                getInflightFd();
                return;
            case SET_INFLIGHT_FD:
                setInflightFd();
                ack(true);
                return;
            default:
                throw new VhostUserException("unsupported " + m);
        }
    }

    private Virtqueue queue(int index) throws VhostUserException {
        m.requireSize(8);
        if (index < 0 || index >= queues.length) {
            throw new VhostUserException(requestName(m.request) + " for queue " + index + ", but only "
                    + queues.length + " exist (GET_QUEUE_NUM)");
        }
        return queues[index];
    }

    private void setMemTable() throws IOException {
        MemoryTable next = MemoryTable.map(m);
        stopAll();
        memory.close();
        memory = next;
        LOG.info("{}: memory table: {} region(s), {} MiB", name, next.regions(), next.totalBytes() >> 20);
        for (Virtqueue q : queues) {
            if (q.addressesSet && !q.translate(memory)) {
                throw new VhostUserException("queue " + q.index + "'s rings are outside the new memory table");
            }
            maybeStart(q);
        }
    }

    private void setVringAddr() throws IOException {
        m.requireSize(40);
        Virtqueue q = queue(m.u32(0));
        stop(q.index);
        q.descUva = m.u64(8);
        q.usedUva = m.u64(16);
        q.availUva = m.u64(24);
        if (q.size == 0 || !q.translate(memory)) {
            throw new VhostUserException("SET_VRING_ADDR for queue " + q.index + ": rings at 0x" + Long.toHexString(q.descUva)
                    + " are outside the memory table (or SET_VRING_NUM is missing)");
        }
        q.addressesSet = true;
        maybeStart(q);
    }

    private void setVringFd() throws IOException {
        m.requireSize(8);
        long v = m.u64(0);
        int index = (int) (v & VRING_INDEX_MASK);
        if (index >= queues.length) {
            throw new VhostUserException(requestName(m.request) + " for queue " + index + ", but only " + queues.length + " exist");
        }
        Virtqueue q = queues[index];
        int fd = (v & VRING_NOFD_MASK) != 0 ? -1 : m.takeFd();
        if ((v & VRING_NOFD_MASK) == 0 && fd < 0) {
            throw new VhostUserException(requestName(m.request) + " for queue " + index + " came without its fd");
        }
        switch (m.request) {
            case SET_VRING_KICK:
                stop(index);
                if (fd < 0) {
                    throw new VhostUserException("queue " + index + ": polling without a kick fd is not supported");
                }
                if (q.kickFd >= 0) {
                    Native.libc().close(q.kickFd);
                }
                q.kickFd = fd;
                if ((features & (1L << VHOST_USER_F_PROTOCOL_FEATURES)) == 0) {
                    q.enabled = true; // without protocol features a ring starts enabled
                }
                maybeStart(q);
                return;
            case SET_VRING_CALL:
                if (q.callFd >= 0) {
                    Native.libc().close(q.callFd);
                }
                q.callFd = fd;
                return;
            default:
                if (fd >= 0) {
                    Native.libc().close(fd); // errors are not reported; nothing to signal
                }
        }
    }

    private void getConfig() throws IOException {
        m.requireSize(12);
        int offset = m.u32(0);
        int size = m.u32(4);
        int flags = m.u32(8);
        if (offset < 0 || size < 0 || size > 256 || offset > 256 - size) {
            throw new VhostUserException("GET_CONFIG offset " + offset + " size " + size);
        }
        ByteBuffer r = channel.beginReply();
        r.putInt(0, offset).putInt(4, size).putInt(8, flags);
        for (int i = 0; i < size; i++) {
            int at = offset + i;
            r.put(12 + i, at < config.length ? config[at] : 0);
        }
        channel.sendReply(m, 12 + size, -1);
    }

    /** VhostUserInflight: u64 mmap_size, u64 mmap_offset, u16 num_queues, u16 queue_size, padded to 24 by C. */
    static final int INFLIGHT_MSG_SIZE = 24;

    private void getInflightFd() throws IOException {
        m.requireSize(20);
        int nq = Short.toUnsignedInt(m.payload.getShort(16));
        int qs = Short.toUnsignedInt(m.payload.getShort(18));
        if (nq == 0 || nq > queues.length || qs == 0 || qs > Virtqueue.MAX_SIZE) {
            throw new VhostUserException("GET_INFLIGHT_FD for " + nq + " queue(s) of " + qs);
        }
        if (inflight != null) {
            inflight.close();
        }
        inflight = InflightRegion.create(nq, qs);
        ByteBuffer r = channel.beginReply();
        r.putLong(0, inflight.size).putLong(8, 0).putShort(16, (short) nq).putShort(18, (short) qs);
        channel.sendReply(m, INFLIGHT_MSG_SIZE, inflight.fd);
        LOG.info("{}: inflight region for {} queue(s) of {} ({} bytes)", name, nq, qs, inflight.size);
    }

    private void setInflightFd() throws IOException {
        m.requireSize(20);
        long size = m.u64(0);
        long offset = m.u64(8);
        int nq = Short.toUnsignedInt(m.payload.getShort(16));
        int qs = Short.toUnsignedInt(m.payload.getShort(18));
        int fd = m.takeFd();
        if (fd < 0) {
            throw new VhostUserException("SET_INFLIGHT_FD without an fd");
        }
        if (nq == 0 || nq > queues.length || qs == 0 || qs > Virtqueue.MAX_SIZE) {
            Native.libc().close(fd);
            throw new VhostUserException("SET_INFLIGHT_FD for " + nq + " queue(s) of " + qs);
        }
        stopAll();
        if (inflight != null) {
            inflight.close();
        }
        inflight = InflightRegion.map(fd, size, offset, nq, qs);
    }

    private void maybeStart(Virtqueue q) throws IOException {
        if (workers[q.index] != null || !q.ready() || memory.regions() == 0) {
            return;
        }
        q.syncUsedIndex();
        QueueWorker w = new QueueWorker(q, memory, new VirtioBlk(device, serial, name + " queue " + q.index), inflight,
                name + "-q" + q.index, requestsPerQueue);
        workers[q.index] = w;
        w.start();
        LOG.info("{}: queue {} started (size {}, avail {}, used {}{})", name, q.index, q.size, q.lastAvail, q.usedIdx,
                q.eventIdx ? ", event_idx" : "");
    }

    private void stop(int index) {
        QueueWorker w = workers[index];
        if (w != null) {
            w.stop();
            workers[index] = null;
        }
    }

    private void stopAll() {
        for (int i = 0; i < workers.length; i++) {
            stop(i);
        }
    }

    private void replyU64(long v) throws IOException {
        ByteBuffer r = channel.beginReply();
        r.putLong(0, v);
        channel.sendReply(m, 8, -1);
    }

    /** REPLY_ACK: answers a request that has no reply of its own when the front-end asked for one. */
    private void ack(boolean ok) throws IOException {
        if (m.needsReply() && has(PROTOCOL_F_REPLY_ACK)) {
            replyU64(ok ? 0 : 1);
        }
    }

    private void release() {
        stopAll();
        for (Virtqueue q : queues) {
            q.closeFds();
        }
        memory.close();
        memory = MemoryTable.empty();
        if (inflight != null) {
            inflight.close();
            inflight = null;
        }
    }
}
