package io.strata.core.blob;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import io.strata.core.os.OpenFile;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Optional;

/** Blobs stored as files in one directory, each named by its blob id (Nydus's local layout). */
public final class LocalBlobDirectory implements BlobSource {
    private final Path directory;

    public LocalBlobDirectory(Path directory) {
        this.directory = directory;
    }

    private Path pathOf(String blobId) {
        if (blobId.isEmpty() || blobId.contains("/") || blobId.equals(".") || blobId.equals("..")) {
            throw new IllegalArgumentException("blob id is not a file name: '" + blobId + "'");
        }
        return directory.resolve(blobId);
    }

    @Override
    public boolean exists(String blobId) {
        return Files.isRegularFile(pathOf(blobId));
    }

    @Override
    public Blob open(String blobId) throws IOException {
        Path path = pathOf(blobId);
        return new FileBlob(blobId, FileChannel.open(path, StandardOpenOption.READ), path);
    }

    @Override
    public String describe() {
        return directory.toString();
    }

    /** A blob that is a local file. */
    static final class FileBlob implements Blob {
        private final String id;
        private final FileChannel channel;
        /** The same channel as transports see it; Optional made once, so asking allocates nothing. */
        private final Optional<OpenFile> file;
        private final Path path;

        FileBlob(String id, FileChannel channel, Path path) {
            this.id = id;
            this.channel = channel;
            this.file = Optional.of(new OpenFile(channel, path));
            this.path = path;
        }

        @Override
        public String id() {
            return id;
        }

        @Override
        public long size() throws IOException {
            return channel.size();
        }

        @Override
        public void readFully(ByteBuffer dst, long position) throws IOException {
            long pos = position;
            while (dst.hasRemaining()) {
                int n = channel.read(dst, pos);
                if (n < 0) {
                    throw new EOFException(path + ": blob ends at " + pos + ", wanted " + dst.remaining() + " more bytes");
                }
                pos += n;
            }
        }

        @Override
        public Optional<OpenFile> localFile() {
            return file;
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }
}
