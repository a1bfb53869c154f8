package io.strata.vhost;

import io.strata.core.buffer.NativeBuffer;
import io.strata.core.buffer.NativeMemory;
import io.strata.core.device.BlockDevice;
import io.strata.core.device.OutOfRangeException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * virtio-blk requests (virtio 1.x section 5.2.6) on top of a descriptor chain: a 16-byte header
 * {type u32, reserved u32, sector u64} in the readable bytes, data, and one status byte, the last
 * writable byte. Reads go straight into guest memory through {@link GuestMemorySink}.
 */
final class VirtioBlk {
    private static final Logger LOG = LoggerFactory.getLogger(VirtioBlk.class);

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

    private final BlockDevice device;
    private final byte[] serial;
    private final NativeBuffer header = NativeBuffer.allocate(HEADER_SIZE);
    private final GuestMemorySink sink = new GuestMemorySink();
    private final String name;
    /** The serial, zero-padded to 20 bytes (no NUL when it is exactly 20, as the spec allows). */
    private final NativeBuffer idBuffer = NativeBuffer.allocate(ID_BYTES);

    VirtioBlk(BlockDevice device, byte[] serial, String name) {
        this.device = device;
        this.serial = serial;
        this.name = name;
        for (int i = 0; i < ID_BYTES; i++) {
            idBuffer.view().put(i, i < serial.length ? serial[i] : 0);
        }
    }

    /** Handles one request; returns the used length (bytes written into the chain, status included). */
    int handle(DescriptorChain chain) {
        long status = chain.lastWritableByte();
        if (status == 0) {
            LOG.warn("{}: request {} has no writable status byte; completed with nothing written", name, chain.head);
            return 0;
        }
        if (chain.readableBytes < HEADER_SIZE) {
            LOG.warn("{}: request {} has a {}-byte header, expected {}", name, chain.head, chain.readableBytes, HEADER_SIZE);
            NativeMemory.putByte(status, (byte) S_IOERR);
            return 1;
        }
        chain.copyReadable(header.address(), HEADER_SIZE);
        int type = NativeMemory.getInt(header.address() + HDR_TYPE);
        long sector = NativeMemory.getLong(header.address() + HDR_SECTOR);
        long dataLength = chain.writableBytes - 1;
        switch (type) {
            case T_IN:
                return read(chain, sector, dataLength, status);
            case T_GET_ID: {
                int n = (int) Math.min(ID_BYTES, dataLength);
                sink.begin(chain, n);
                sink.memory(idBuffer, 0, n);
                NativeMemory.putByte(status, (byte) S_OK);
                return n + 1;
            }
            case T_FLUSH:
                NativeMemory.putByte(status, (byte) S_OK);
                return 1;
            case T_OUT:
                // A read-only device (VIRTIO_BLK_F_RO): writes fail as they do on QEMU's read-only disks.
                NativeMemory.putByte(status, (byte) S_IOERR);
                return 1;
            default:
                NativeMemory.putByte(status, (byte) S_UNSUPP);
                return 1;
        }
    }


    private int read(DescriptorChain chain, long sector, long dataLength, long status) {
        if (dataLength % SECTOR != 0 || sector < 0 || sector > Long.MAX_VALUE / SECTOR) {
            NativeMemory.putByte(status, (byte) S_IOERR);
            return 1;
        }
        try {
            sink.begin(chain, dataLength);
            device.resolve(sector * SECTOR, dataLength, sink);
            NativeMemory.putByte(status, (byte) S_OK);
            return (int) Math.min(Integer.MAX_VALUE, dataLength + 1);
        } catch (OutOfRangeException e) {
            LOG.debug("{}: {}", name, e.getMessage());
        } catch (IOException | RuntimeException e) {
            LOG.warn("{}: read of sector {} (+{} bytes) failed: {}", name, sector, dataLength, e.getMessage());
        }
        NativeMemory.putByte(status, (byte) S_IOERR);
        return 1;
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
