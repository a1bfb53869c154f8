package io.strata.registry.cache;

import io.strata.core.blob.Blob;
import io.strata.core.blob.BlobSource;
import io.strata.core.blob.ChunkRanges;
import io.strata.registry.RangeFetcher;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Blobs that live remotely (in a registry: digest {@code sha256:<blob id>} in one repository), read
 * lazily through the persistent {@link BlobCacheDirectory}. Where the bytes come from is a
 * {@link FetcherFactory}: the registry client in production, a local file in tests.
 *
 * <p>Every blob an image names is taken to exist: asking the registry up front would make a warm
 * cache useless without the network. A blob the registry lacks fails its first fetch, with the
 * registry's error.
 */
public final class RemoteBlobSource implements BlobSource {
    /** Most fetch buffers kept for reuse; more concurrent fetches allocate and drop theirs. */
    private static final int POOLED_BUFFERS = 16;
    private static final int READAHEAD_THREADS = 8;

    /** Makes the fetcher of a blob. It must not touch the network: fetchers are asked only on a miss. */
    @FunctionalInterface
    public interface FetcherFactory {
        RangeFetcher open(String blobId) throws IOException;
    }

    private final BlobCacheDirectory cache;
    private final FetcherFactory fetchers;
    private final String description;
    private final FetchPolicy policy;
    private final CacheCounters counters = new CacheCounters();
    /** Store failures: warned about once a minute at most. */
    private final OncePerMinute storeFailures = new OncePerMinute();
    /** On-demand reads fetching from the remote (or waiting for a fetch) right now. */
    private final AtomicInteger demandFetches = new AtomicInteger();
    /** Runs readahead requests (see {@link FetchPolicy}); made on first use. */
    private volatile java.util.concurrent.ExecutorService readahead;
    /** Direct buffers of {@code policy.mergeLimit()} bytes not in use. Guarded by itself. */
    private final ArrayDeque<ByteBuffer> buffers = new ArrayDeque<>();

    /**
     * @param description where the blobs come from, for logs and errors (a registry and repository)
     */
    public RemoteBlobSource(BlobCacheDirectory cache, FetcherFactory fetchers, String description, FetchPolicy policy) {
        this.cache = cache;
        this.fetchers = fetchers;
        this.description = description;
        this.policy = policy;
    }

    public RemoteBlobSource(BlobCacheDirectory cache, FetcherFactory fetchers, String description) {
        this(cache, fetchers, description, FetchPolicy.defaults());
    }

    @Override
    public boolean exists(String blobId) {
        return true;
    }

    /** Without the chunk ranges every read is fetched as it comes and nothing is cached. */
    @Override
    public Blob open(String blobId) throws IOException {
        return open(blobId, ChunkRanges.empty());
    }

    @Override
    public RemoteBlob open(String blobId, ChunkRanges chunks) throws IOException {
        RangeFetcher fetcher = fetchers.open(blobId);
        CachedBlobFile file = cache.open(blobId, chunks, fetcher::size);
        return new RemoteBlob(this, file, fetcher);
    }

    @Override
    public String describe() {
        return description;
    }

    /** Whether to log this store failure ({@link OncePerMinute#occurred}): -1 no, else how many went unlogged. */
    long storeFailureToLog() {
        return storeFailures.occurred();
    }

    public CacheCounters counters() {
        return counters;
    }

    public FetchPolicy policy() {
        return policy;
    }

    public BlobCacheDirectory cache() {
        return cache;
    }

    /**
     * How many on-demand reads of this source's blobs are fetching from the remote, or waiting for
     * a fetch, right now: a prefetcher issues its next request only while this is low, so that a
     * read never queues behind prefetching.
     */
    public int demandFetches() {
        return demandFetches.get();
    }

    void demandStarted() {
        demandFetches.incrementAndGet();
    }

    void demandFinished() {
        demandFetches.decrementAndGet();
    }

    /**
     * Runs a readahead request on one of this source's readahead threads (daemons, as many as the
     * registry client's default concurrency bound: beyond that, requests would wait for a connection anyway).
     */
    void readAhead(Runnable request) {
        java.util.concurrent.ExecutorService e = readahead;
        if (e == null) {
            synchronized (this) {
                e = readahead;
                if (e == null) {
                    AtomicInteger n = new AtomicInteger();
                    java.util.concurrent.ThreadPoolExecutor pool = new java.util.concurrent.ThreadPoolExecutor(READAHEAD_THREADS,
                            READAHEAD_THREADS, 30, java.util.concurrent.TimeUnit.SECONDS, new java.util.concurrent.LinkedBlockingQueue<>(), r -> {
                                Thread t = new Thread(r, "strata-readahead-" + n.incrementAndGet());
                                t.setDaemon(true);
                                return t;
                            });
                    pool.allowCoreThreadTimeOut(true); // idle threads go: a source lives as long as its image is served
                    e = pool;
                    readahead = e;
                }
            }
        }
        e.execute(request);
    }

    void release(RemoteBlob blob) throws IOException {
        cache.release(blob.cacheFile());
    }

    void stored(long bytes) {
        cache.stored(bytes);
    }

    /** A direct buffer of at least {@code size} bytes to fetch into (pooled up to the merge limit). */
    ByteBuffer borrowBuffer(int size) {
        if (size <= policy.mergeLimit()) {
            synchronized (buffers) {
                ByteBuffer b = buffers.pollFirst();
                if (b != null) {
                    return b;
                }
            }
            return ByteBuffer.allocateDirect(policy.mergeLimit());
        }
        return ByteBuffer.allocateDirect(size); // one chunk larger than the merge limit
    }

    void returnBuffer(ByteBuffer b) {
        if (b.capacity() == policy.mergeLimit()) {
            synchronized (buffers) {
                if (buffers.size() < POOLED_BUFFERS) {
                    buffers.addFirst(b);
                }
            }
        }
    }

    @Override
    public String toString() {
        return "remote blobs from " + description + ", cached in " + cache;
    }
}
