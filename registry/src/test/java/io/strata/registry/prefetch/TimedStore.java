package io.strata.registry.prefetch;

import io.strata.registry.RangeFetcher;
import io.strata.registry.cache.FileBlobStore;
import io.strata.registry.cache.RemoteBlobSource;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * A real {@link RangeFetcher} factory the test controls: the blob files of a {@link FileBlobStore},
 * each request delayed by a fixed time (a slow link) and logged with the thread that made it and when
 * it started and ended, so a test can see who waited for whom.
 */
final class TimedStore implements RemoteBlobSource.FetcherFactory {
    /** One request: the thread that sent it, where, and its start and end (System.nanoTime). */
    record Request(String thread, String blobId, long position, int length, long startNanos, long endNanos) {
        boolean prefetch() {
            return thread.startsWith("strata-prefetch-");
        }

        boolean overlaps(long from, long to) {
            return position < to && from < position + length;
        }
    }

    private final FileBlobStore store;
    private volatile long delayMillis;
    /** The delay of a request sent by a read (not the prefetcher), when set; else {@link #delayMillis}. */
    private volatile long demandDelayMillis = -1;
    private final List<Request> log = new ArrayList<>();
    private final List<long[]> open = new ArrayList<>();

    TimedStore(FileBlobStore store) {
        this.store = store;
    }

    TimedStore delay(long millis) {
        delayMillis = millis;
        return this;
    }

    TimedStore demandDelay(long millis) {
        demandDelayMillis = millis;
        return this;
    }

    List<Request> requests() {
        synchronized (log) {
            return List.copyOf(log);
        }
    }

    /** Prefetch requests started and not yet ended. */
    int prefetchInFlight() {
        synchronized (log) {
            return (int) open.stream().filter(o -> o[1] == 1).count();
        }
    }

    @Override
    public RangeFetcher open(String blobId) throws IOException {
        RangeFetcher inner = store.open(blobId);
        return new RangeFetcher() {
            @Override
            public long size() throws IOException {
                return inner.size();
            }

            @Override
            public void fetch(long position, ByteBuffer dst) throws IOException {
                String thread = Thread.currentThread().getName();
                long start = System.nanoTime();
                long[] marker = {start, thread.startsWith("strata-prefetch-") ? 1 : 0};
                synchronized (log) {
                    open.add(marker);
                }
                int len = dst.remaining();
                try {
                    long delay = marker[1] == 0 && demandDelayMillis >= 0 ? demandDelayMillis : delayMillis;
                    if (delay > 0) {
                        Thread.sleep(delay);
                    }
                    inner.fetch(position, dst);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new InterruptedIOException("interrupted");
                } finally {
                    synchronized (log) {
                        open.remove(marker);
                        log.add(new Request(thread, blobId, position, len, start, System.nanoTime()));
                    }
                }
            }

            @Override
            public String describe() {
                return "timed " + inner.describe();
            }
        };
    }
}
