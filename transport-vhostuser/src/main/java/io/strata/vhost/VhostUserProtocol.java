package io.strata.vhost;

/**
 * Wire constants of vhost-user (QEMU {@code docs/interop/vhost-user.rst}) and the virtio-blk bits
 * Strata uses, in one place. Integers on the vhost-user socket are little-endian (host order).
 */
public final class VhostUserProtocol {
    private VhostUserProtocol() {
    }

    // Message header: request u32, flags u32, size u32.
    public static final int HEADER_SIZE = 12;
    public static final int VERSION = 0x1;
    public static final int VERSION_MASK = 0x3;
    public static final int FLAG_REPLY = 0x4;
    public static final int FLAG_NEED_REPLY = 0x8;
    /** Largest payload Strata accepts; the biggest real one (SET_MEM_TABLE, 8 regions) is 264 bytes. */
    public static final int MAX_PAYLOAD = 4096;
    public static final int MAX_FDS = 8;

    // Front-end requests.
    public static final int GET_FEATURES = 1;
    public static final int SET_FEATURES = 2;
    public static final int SET_OWNER = 3;
    public static final int RESET_OWNER = 4;
    public static final int SET_MEM_TABLE = 5;
    public static final int SET_LOG_BASE = 6;
    public static final int SET_LOG_FD = 7;
    public static final int SET_VRING_NUM = 8;
    public static final int SET_VRING_ADDR = 9;
    public static final int SET_VRING_BASE = 10;
    public static final int GET_VRING_BASE = 11;
    public static final int SET_VRING_KICK = 12;
    public static final int SET_VRING_CALL = 13;
    public static final int SET_VRING_ERR = 14;
    public static final int GET_PROTOCOL_FEATURES = 15;
    public static final int SET_PROTOCOL_FEATURES = 16;
    public static final int GET_QUEUE_NUM = 17;
    public static final int SET_VRING_ENABLE = 18;
    public static final int GET_CONFIG = 24;
    public static final int SET_CONFIG = 25;
    public static final int GET_INFLIGHT_FD = 31;
    public static final int SET_INFLIGHT_FD = 32;

    // Protocol feature bits.
    public static final int PROTOCOL_F_MQ = 0;
    public static final int PROTOCOL_F_REPLY_ACK = 3;
    public static final int PROTOCOL_F_CONFIG = 9;
    public static final int PROTOCOL_F_INFLIGHT_SHMFD = 12;

    // Virtio feature bits (virtio 1.x, virtio-blk section 5.2.3, vhost-user).
    public static final int VIRTIO_BLK_F_SIZE_MAX = 1;
    public static final int VIRTIO_BLK_F_SEG_MAX = 2;
    public static final int VIRTIO_BLK_F_RO = 5;
    public static final int VIRTIO_BLK_F_BLK_SIZE = 6;
    public static final int VIRTIO_BLK_F_MQ = 12;
    public static final int VIRTIO_RING_F_INDIRECT_DESC = 28;
    public static final int VIRTIO_RING_F_EVENT_IDX = 29;
    public static final int VHOST_USER_F_PROTOCOL_FEATURES = 30;
    public static final int VIRTIO_F_VERSION_1 = 32;

    /** SET_VRING_KICK/CALL/ERR payload: bits 0-7 the queue, bit 8 set when no fd is passed. */
    public static final long VRING_INDEX_MASK = 0xff;
    public static final long VRING_NOFD_MASK = 0x100;

    public static String requestName(int request) {
        switch (request) {
            case GET_FEATURES: return "GET_FEATURES";
            case SET_FEATURES: return "SET_FEATURES";
            case SET_OWNER: return "SET_OWNER";
            case RESET_OWNER: return "RESET_OWNER";
            case SET_MEM_TABLE: return "SET_MEM_TABLE";
            case SET_LOG_BASE: return "SET_LOG_BASE";
            case SET_LOG_FD: return "SET_LOG_FD";
            case SET_VRING_NUM: return "SET_VRING_NUM";
            case SET_VRING_ADDR: return "SET_VRING_ADDR";
            case SET_VRING_BASE: return "SET_VRING_BASE";
            case GET_VRING_BASE: return "GET_VRING_BASE";
            case SET_VRING_KICK: return "SET_VRING_KICK";
            case SET_VRING_CALL: return "SET_VRING_CALL";
            case SET_VRING_ERR: return "SET_VRING_ERR";
            case GET_PROTOCOL_FEATURES: return "GET_PROTOCOL_FEATURES";
            case SET_PROTOCOL_FEATURES: return "SET_PROTOCOL_FEATURES";
            case GET_QUEUE_NUM: return "GET_QUEUE_NUM";
            case SET_VRING_ENABLE: return "SET_VRING_ENABLE";
            case GET_CONFIG: return "GET_CONFIG";
            case SET_CONFIG: return "SET_CONFIG";
            case GET_INFLIGHT_FD: return "GET_INFLIGHT_FD";
            case SET_INFLIGHT_FD: return "SET_INFLIGHT_FD";
            default: return "request " + request;
        }
    }
}
