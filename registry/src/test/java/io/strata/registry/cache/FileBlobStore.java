package io.strata.registry.cache;

import io.strata.registry.RangeFetcher;
import java.io.EOFException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Blobs served from a local directory of blob files, the way a registry serves them: one range per
 * request, read from the real file. The test can make it fail every call (a registry that is gone),
 * return a wrong byte at one blob offset (a registry or proxy handing out bad data), or answer
 * slowly; it records every request so merging can be checked.
 */
public final class FileBlobStore implements RemoteBlobSource.FetcherFactory {
    /** One request: which blob, where, how long. */
    public record Request(String blobId, long position, int length) {
    }

    private final Path dir;
    private volatile boolean failing;
    private volatile String corruptBlob;
    private volatile long corruptOffset = -1;
    private volatile long delayMillis;
    private final List<Request> requests = new ArrayList<>();
    private final AtomicLong bytes = new AtomicLong();

    public FileBlobStore(Path dir) {
        this.dir = dir;
    }

    /** Every call fails from now on (or no longer). */
    public FileBlobStore failing(boolean on) {
        failing = on;
        return this;
    }

    /** Requests covering {@code offset} of {@code blobId} return that byte flipped; null id: none. */
    public FileBlobStore corrupt(String blobId, long offset) {
        corruptOffset = offset;
        corruptBlob = blobId;
        return this;
    }

    public FileBlobStore delay(long millis) {
        delayMillis = millis;
        return this;
    }

    public List<Request> requests() {
        synchronized (requests) {
            return List.copyOf(requests);
        }
    }

    public void clearRequests() {
        synchronized (requests) {
            requests.clear();
        }
        bytes.set(0);
    }

    public long bytesServed() {
        return bytes.get();
    }

    @Override
    public RangeFetcher open(String blobId) {
        return new Fetcher(blobId);
    }

    private final class Fetcher implements RangeFetcher {
        private final String blobId;

        Fetcher(String blobId) {
            this.blobId = blobId;
        }

        @Override
        public String describe() {
            return dir.resolve(blobId).toString();
        }

        @Override
        public long size() throws IOException {
            if (failing) {
                throw new IOException("blob store is down (test): size of " + blobId);
            }
            try (FileChannel ch = FileChannel.open(dir.resolve(blobId), StandardOpenOption.READ)) {
                return ch.size();
            }
        }

        @Override
        public void fetch(long position, ByteBuffer dst) throws IOException {
            if (failing) {
                throw new IOException("blob store is down (test): " + blobId + " at " + position);
            }
            long delay = delayMillis;
            if (delay > 0) {
                try {
                    Thread.sleep(delay);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new InterruptedIOException();
                }
            }
            int start = dst.position();
            int length = dst.remaining();
            synchronized (requests) {
                requests.add(new Request(blobId, position, length));
            }
            try (FileChannel ch = FileChannel.open(dir.resolve(blobId), StandardOpenOption.READ)) {
                long pos = position;
                while (dst.hasRemaining()) {
                    int n = ch.read(dst, pos);
                    if (n < 0) {
                        throw new EOFException(blobId + " ends at " + pos);
                    }
                    pos += n;
                }
            }
            long bad = corruptOffset;
            if (blobId.equals(corruptBlob) && bad >= position && bad < position + length) {
                int at = start + (int) (bad - position);
                dst.put(at, (byte) (dst.get(at) ^ 0x5a));
            }
            bytes.addAndGet(length);
        }
    }
}
