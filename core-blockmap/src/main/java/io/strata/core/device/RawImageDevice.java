package io.strata.core.device;

import io.strata.core.os.OpenFile;
import io.strata.core.os.LibC;
import io.strata.core.os.Native;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** A plain image file (any filesystem or disk image) served as it is: one file region. */
public final class RawImageDevice implements BlockDevice {
    private final Path path;
    private final FileChannel channel;
    private final OpenFile file;
    private final long size;

    private RawImageDevice(Path path, FileChannel channel, long size) {
        this.path = path;
        this.channel = channel;
        this.file = new OpenFile(channel, path);
        this.size = size;
    }

    public static RawImageDevice open(Path path) throws IOException {
        FileChannel ch = FileChannel.open(path, StandardOpenOption.READ);
        return new RawImageDevice(path, ch, ch.size());
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void resolve(long offset, long length, SegmentSink sink) throws IOException {
        BlockDevice.checkRange(offset, length, size);
        if (length > 0) {
            sink.file(file, offset, length);
        }
    }

    /**
     * A sparse file's holes as holes, found with lseek SEEK_DATA / SEEK_HOLE (as qemu-nbd and
     * nbdkit's file plugin map them), so that nbdcopy and qemu-img skip them instead of copying
     * zeros. Where the file system or device cannot tell (EINVAL: a block device, an old file
     * system), the rest is data. lseek moves the descriptor's offset, which no read here uses (every
     * read is positional: sendfile, preadv, FileChannel.read at a position).
     */
    @Override
    public void mapAllocation(long offset, long length, AllocationSink sink) throws IOException {
        BlockDevice.checkRange(offset, length, size);
        long end = offset + length;
        long at = offset;
        LibC libc = Native.libc();
        int fd = file.descriptor();
        while (at < end) {
            long data = libc.lseek(fd, at, LibC.SEEK_DATA);
            if (data < 0) {
                // ENXIO: no data from here to the file's end; anything else: the file system cannot tell.
                sink.run(end - at, Native.errno() == LibC.ENXIO);
                return;
            }
            if (data > at) {
                long holeEnd = Math.min(data, end);
                if (!sink.run(holeEnd - at, true)) {
                    return;
                }
                at = holeEnd;
                if (at == end) {
                    return;
                }
            }
            long hole = libc.lseek(fd, at, LibC.SEEK_HOLE);
            long dataEnd = hole <= at ? end : Math.min(hole, end); // a failure, or data to the end
            if (!sink.run(dataEnd - at, false)) {
                return;
            }
            at = dataEnd;
        }
    }

    @Override
    public String describe() {
        return "raw image " + path + " (" + size + " bytes)";
    }

    @Override
    public String describeForClients() {
        return "raw image (" + size + " bytes)";
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
