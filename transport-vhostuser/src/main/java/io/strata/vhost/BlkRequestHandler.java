package io.strata.vhost;

import static io.strata.vhost.VirtioBlk.*;

import io.strata.core.buffer.NativeBuffer;
import io.strata.core.buffer.NativeMemory;
import io.strata.core.device.BlockDevice;
import io.strata.core.device.OutOfRangeException;
import io.strata.core.metrics.ErrorKind;
import io.strata.core.metrics.ExportCounters;
import io.strata.core.metrics.RequestType;
import java.io.IOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * virtio-blk requests (virtio 1.x section 5.2.6) on one queue: a 16-byte header {type u32, reserved
 * u32, sector u64} in the readable bytes, data, and one status byte, the chain's last byte. Reads go
 * straight into guest memory through {@link GuestMemorySink}. One per queue worker; allocation-free.
 * Every completed request is counted in the device's {@link ExportCounters} (type, bytes, error
 * kind, time from taking it off the ring to writing its status).
 */
final class BlkRequestHandler implements VirtioDevice.RequestHandler {
    private static final Logger LOG = LoggerFactory.getLogger(BlkRequestHandler.class);

    private final BlockDevice device;
    private final NativeBuffer header = NativeBuffer.allocate(HEADER_SIZE);
    private final GuestMemorySink sink = new GuestMemorySink();
    private final String name;
    /** Requests whose header was too short (queues share the handler). */
    private final java.util.concurrent.atomic.AtomicLong shortHeaders = new java.util.concurrent.atomic.AtomicLong();
    /** The serial, zero-padded to 20 bytes (no NUL when it is exactly 20, as the spec allows). */
    private final NativeBuffer idBuffer = NativeBuffer.allocate(ID_BYTES);
    private final ExportCounters counters;
    /** When the request being handled was taken (this handler's queue worker only). */
    private long startedAt;

    BlkRequestHandler(BlockDevice device, byte[] serial, String name, ExportCounters counters) {
        this.device = device;
        this.name = name;
        this.counters = counters;
        for (int i = 0; i < ID_BYTES; i++) {
            idBuffer.view().put(i, i < serial.length ? serial[i] : 0);
        }
    }

    /** The metrics' name of a virtio-blk request type (virtio 1.x 5.2.6: IN 0, OUT 1, FLUSH 4, GET_ID 8, DISCARD 11, WRITE_ZEROES 13). */
    static RequestType typeOf(int type) {
        switch (type) {
            case T_IN:
                return RequestType.READ;
            case T_OUT:
                return RequestType.WRITE;
            case T_FLUSH:
                return RequestType.FLUSH;
            case T_GET_ID:
                return RequestType.GET_ID;
            case 11:
                return RequestType.TRIM;
            case 13:
                return RequestType.WRITE_ZEROES;
            default:
                return RequestType.OTHER;
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
        startedAt = chain.takenAt;
        if (!chain.counted) {
            counters.received(1);
            chain.counted = true;
        }
        if (chain.readableBytes < HEADER_SIZE) {
            // A guest can send these as fast as good requests: the first and every 1024th are logged.
            long seen = shortHeaders.incrementAndGet();
            if (seen % 1024 == 1) {
                LOG.warn("{}: request {} has a {}-byte header, expected {} ({} so far)", name, chain.head, chain.readableBytes,
                        HEADER_SIZE, seen);
            }
            NativeMemory.putByte(status, (byte) S_IOERR);
            return failed(RequestType.OTHER, ErrorKind.INVALID_REQUEST);
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
                return answered(RequestType.GET_ID, n, n + 1);
            }
            case T_FLUSH:
                NativeMemory.putByte(status, (byte) S_OK);
                return answered(RequestType.FLUSH, 0, 1);
            case T_OUT:
                // A read-only device (VIRTIO_BLK_F_RO): writes fail as they do on QEMU's read-only disks.
                NativeMemory.putByte(status, (byte) S_IOERR);
                return failed(RequestType.WRITE, ErrorKind.READ_ONLY);
            default:
                NativeMemory.putByte(status, (byte) S_UNSUPP);
                return failed(typeOf(type), ErrorKind.UNSUPPORTED);
        }
    }

    @Override
    public boolean wouldWait(DescriptorChain chain) {
        if (chain.lastByte == 0 || chain.readableBytes < HEADER_SIZE) {
            return false;
        }
        chain.copyReadable(header.address(), HEADER_SIZE);
        if (NativeMemory.getInt(header.address() + HDR_TYPE) != T_IN) {
            return false;
        }
        long sector = NativeMemory.getLong(header.address() + HDR_SECTOR);
        long dataLength = chain.writableBytes - 1;
        if (!isWholeSectors(sector, dataLength) || device.isReady(sector * SECTOR, dataLength)) {
            return false; // bad requests fail at once; ready ones are served at once
        }
        counters.received(1); // in flight from now on, while it waits for a loader
        chain.counted = true;
        return true;
    }

    @Override
    public int reject(long lastByte) {
        if (lastByte == 0) {
            return CANNOT_COMPLETE;
        }
        NativeMemory.putByte(lastByte, (byte) S_IOERR);
        // A chain that could not be followed: its header was never read, so its type is unknown.
        counters.received(1);
        counters.failed(RequestType.OTHER, ErrorKind.INVALID_REQUEST, 0);
        return 1;
    }

    private int answered(RequestType type, long bytes, int usedLength) {
        counters.answered(type, bytes, System.nanoTime() - startedAt);
        return usedLength;
    }

    /** Counts a request completed with an error status (already written); its used length is the status byte. */
    private int failed(RequestType type, ErrorKind kind) {
        counters.failed(type, kind, System.nanoTime() - startedAt);
        return 1;
    }

    /** A read of whole sectors whose byte offset fits a long (else it fails as an invalid request). */
    private static boolean isWholeSectors(long sector, long dataLength) {
        return dataLength % SECTOR == 0 && sector >= 0 && sector <= Long.MAX_VALUE / SECTOR;
    }

    private int read(DescriptorChain chain, long sector, long dataLength, long status) {
        if (!isWholeSectors(sector, dataLength)) {
            NativeMemory.putByte(status, (byte) S_IOERR);
            return failed(RequestType.READ, ErrorKind.INVALID_REQUEST);
        }
        ErrorKind kind;
        try {
            sink.begin(chain, dataLength);
            device.resolve(sector * SECTOR, dataLength, sink);
            NativeMemory.putByte(status, (byte) S_OK);
            return answered(RequestType.READ, dataLength, (int) Math.min(Integer.MAX_VALUE, dataLength + 1));
        } catch (OutOfRangeException e) {
            LOG.debug("{}: {}", name, e.getMessage());
            kind = ErrorKind.OUT_OF_RANGE;
        } catch (IOException e) {
            LOG.warn("{}: read of sector {} (+{} bytes) failed: {}", name, sector, dataLength, e.getMessage());
            kind = ErrorKind.of(e);
        } catch (RuntimeException e) {
            LOG.warn("{}: read of sector {} (+{} bytes) failed: {}", name, sector, dataLength, e.getMessage());
            kind = ErrorKind.IO;
        }
        NativeMemory.putByte(status, (byte) S_IOERR);
        return failed(RequestType.READ, kind);
    }
}
