package io.strata.vhost;

import static io.strata.vhost.VhostUserProtocol.*;

import io.strata.core.device.BlockDevice;
import io.strata.core.metrics.ExportCounters;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * The virtio-blk device (virtio 1.x section 5.2) behind the vhost-user protocol: a read-only disk
 * with its feature bits and configuration space; each queue's requests are served by a
 * {@link BlkRequestHandler}.
 */
final class VirtioBlk implements VirtioDevice {
    static final int HEADER_SIZE = 16;
    static final int HDR_TYPE = 0;
    static final int HDR_SECTOR = 8;
    static final int T_IN = 0;
    static final int T_OUT = 1;
    static final int T_FLUSH = 4;
    static final int T_GET_ID = 8;
    static final int S_OK = 0;
    static final int S_IOERR = 1;
    static final int S_UNSUPP = 2;
    static final int SECTOR = 512;
    static final int ID_BYTES = 20;

    static final long FEATURES = 1L << VIRTIO_BLK_F_RO | 1L << VIRTIO_BLK_F_BLK_SIZE | 1L << VIRTIO_BLK_F_SEG_MAX
            | 1L << VIRTIO_BLK_F_SIZE_MAX | 1L << VIRTIO_BLK_F_MQ;

    private final BlockDevice device;
    private final byte[] serial;
    private final byte[] config;
    private final ExportCounters counters;

    VirtioBlk(BlockDevice device, byte[] serial, int queues) {
        this(device, serial, queues, new ExportCounters());
    }

    /** A device whose requests every queue counts in {@code counters}. */
    VirtioBlk(BlockDevice device, byte[] serial, int queues, ExportCounters counters) {
        this.device = device;
        this.counters = counters;
        this.serial = serial;
        this.config = BlkConfig.encode(device.size() / SECTOR, device.blockSize(), queues);
    }

    @Override
    public long features() {
        return FEATURES;
    }

    @Override
    public byte[] config() {
        return config;
    }

    @Override
    public RequestHandler newHandler(String name) {
        return new BlkRequestHandler(device, serial, name, counters);
    }

    /** A 20-byte serial from the image's first block: stable for an image, different across images. */
    static byte[] serialOf(BlockDevice device) {
        try {
            java.nio.ByteBuffer first = java.nio.ByteBuffer.allocate((int) Math.min(4096, device.size()));
            device.read(0, first);
            byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(first.array());
            String s = "strata-" + java.util.HexFormat.of().formatHex(d).substring(0, 13);
            return s.getBytes(StandardCharsets.US_ASCII);
        } catch (IOException | java.security.NoSuchAlgorithmException e) {
            return "strata".getBytes(StandardCharsets.US_ASCII);
        }
    }
}
