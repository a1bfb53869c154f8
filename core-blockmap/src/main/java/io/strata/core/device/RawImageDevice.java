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

    /**
     * A descriptor of the same file for lseek (SEEK_DATA / SEEK_HOLE), or -1: the channel's own is
     * not reachable without opening the JDK's internals, which `serve nbd` runs without (bin/strata).
     */
    private final int seekFd;

    private RawImageDevice(Path path, FileChannel channel, long size, int seekFd) {
        this.path = path;
        this.channel = channel;
        this.file = new OpenFile(channel, path);
        this.size = size;
        this.seekFd = seekFd;
    }

    public static RawImageDevice open(Path path) throws IOException {
        // The lseek descriptor first, and the channel opened through it: both are the same file even
        // if the path is renamed or replaced between the two opens.
        LibC libc = Native.libc();
        int fd = libc.open(path.toString(), LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (fd < 0) {
            FileChannel ch = FileChannel.open(path, StandardOpenOption.READ); // says why in the JDK's words
            return new RawImageDevice(path, ch, ch.size(), -1);
        }
        try {
            FileChannel ch = Native.reopenForReading(fd);
            return new RawImageDevice(path, ch, ch.size(), fd);
        } catch (IOException | RuntimeException e) {
            libc.close(fd);
            throw e;
        }
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
     * system), the rest is data. lseek moves the offset of {@link #seekFd} alone, a descriptor
     * no read uses (the channel opened through /proc/self/fd has an offset of its own).
     */
    @Override
    public void mapAllocation(long offset, long length, AllocationSink sink) throws IOException {
        if (seekFd < 0) {
            BlockDevice.super.mapAllocation(offset, length, sink); // all data
            return;
        }
        BlockDevice.checkRange(offset, length, size);
        long end = offset + length;
        long at = offset;
        LibC libc = Native.libc();
        while (at < end) {
            long data = libc.lseek(seekFd, at, LibC.SEEK_DATA);
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
            long hole = libc.lseek(seekFd, at, LibC.SEEK_HOLE);
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
        try {
            channel.close();
        } finally {
            if (seekFd >= 0) {
                Native.libc().close(seekFd);
            }
        }
    }
}
