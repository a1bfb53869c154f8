package io.strata.vhost;

import static io.strata.vhost.VirtioBlk.*;

import io.strata.core.buffer.NativeBuffer;
import io.strata.core.buffer.NativeMemory;
import io.strata.core.device.BlockDevice;
import io.strata.core.device.OutOfRangeException;
import java.io.IOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * virtio-blk requests (virtio 1.x section 5.2.6) on one queue: a 16-byte header {type u32, reserved
 * u32, sector u64} in the readable bytes, data, and one status byte, the chain's last byte. Reads go
 * straight into guest memory through {@link GuestMemorySink}. One per queue worker; allocation-free.
 */
final class BlkRequestHandler implements VirtioDevice.RequestHandler {
    private static final Logger LOG = LoggerFactory.getLogger(BlkRequestHandler.class);

    private final BlockDevice device;
    private final NativeBuffer header = NativeBuffer.allocate(HEADER_SIZE);
    private final GuestMemorySink sink = new GuestMemorySink();
    private final String name;
    /** The serial, zero-padded to 20 bytes (no NUL when it is exactly 20, as the spec allows). */
    private final NativeBuffer idBuffer = NativeBuffer.allocate(ID_BYTES);

    BlkRequestHandler(BlockDevice device, byte[] serial, String name) {
        this.device = device;
        this.name = name;
        for (int i = 0; i < ID_BYTES; i++) {
            idBuffer.view().put(i, i < serial.length ? serial[i] : 0);
        }
    }

    @Override
    public int handle(DescriptorChain chain) {
        long status = chain.lastByte;
        if (status == 0) {
            // No status byte to write (the last descriptor is device-readable or empty): completing the
            // request would let the guest read whatever its memory held as the status.
            return CANNOT_COMPLETE;
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

    @Override
    public int reject(long lastByte) {
        if (lastByte == 0) {
            return CANNOT_COMPLETE;
        }
        NativeMemory.putByte(lastByte, (byte) S_IOERR);
        return 1;
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
}
