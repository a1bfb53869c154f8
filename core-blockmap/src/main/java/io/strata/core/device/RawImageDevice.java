package io.strata.core.device;

import io.strata.core.os.OpenFile;
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
