package io.strata.vhost;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** {@code struct virtio_blk_config} (virtio 1.x section 5.2.4), the fields Strata offers. */
final class BlkConfig {
    static final int CAPACITY = 0;      // u64, in 512-byte sectors
    static final int SIZE_MAX = 8;      // u32
    static final int SEG_MAX = 12;      // u32
    static final int BLK_SIZE = 20;     // u32
    static final int NUM_QUEUES = 34;   // u16
    /** Size of the structure as Linux 6.x and QEMU 10 know it; GET_CONFIG may ask for less. */
    static final int SIZE = 64;

    /** Largest segment Strata accepts; any size works, this keeps guest requests reasonable. */
    static final int MAX_SEGMENT = 4 << 20;
    /** At most this many data segments per request (seg_max must stay below the queue size). */
    static final int MAX_SEGMENTS = 126;

    private BlkConfig() {
    }

    static byte[] encode(long capacitySectors, int blockSize, int queues) {
        ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(CAPACITY, capacitySectors);
        b.putInt(SIZE_MAX, MAX_SEGMENT);
        b.putInt(SEG_MAX, MAX_SEGMENTS);
        b.putInt(BLK_SIZE, blockSize);
        b.putShort(NUM_QUEUES, (short) queues);
        return b.array();
    }
}
