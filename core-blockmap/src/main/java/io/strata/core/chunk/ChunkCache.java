package io.strata.core.chunk;

import io.strata.core.buffer.NativeBuffer;
import java.io.IOException;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Decompressed chunks in off-heap memory, bounded in bytes.
 *
 * <p>Each cached chunk holds a buffer of the smallest size class that fits it (4 KiB, then four
 * classes per doubling: 4, 5, 6, 7, 8, 10, 12, 14, 16 KiB ... up to the largest chunk), so a tree of
 * small files takes about the memory of its bytes, not a largest-chunk-sized slot per chunk (a
 * 1 MiB slot per 8 KiB file made a 256 MiB cache hold 256 chunks and thrash, and a large one use
 * 100 times the memory of the data). The bound counts every buffer allocated: those holding chunks
 * and those kept free for reuse. Buffers are allocated on first use and reused after eviction by the
 * next chunk of their class, so a miss allocates no native memory once the cache is warm and the
 * mix of sizes is steady; when a class has no free buffer and the bound is reached, free buffers of
 * other classes are given back first, then chunks are evicted.
 *
 * <p>Lookup is an array index per blob (no boxing, no hashing): a hit is two atomic operations and no
 * allocation. The first reader of a chunk loads it; concurrent readers of the same chunk wait for
 * that one load. Eviction is CLOCK (second chance) over the resident chunks, skipping chunks that a
 * reader has pinned.
 */
public final class ChunkCache implements AutoCloseable {
    /** Fills a buffer with a chunk's uncompressed bytes; returns how many bytes are valid. */
    @FunctionalInterface
    public interface Loader {
        int load(int blob, int chunk, NativeBuffer buffer) throws IOException;
    }

    private static final int LOADING = 0;
    private static final int READY = 1;
    private static final int FAILED = 2;

    /** The smallest buffer: one page; a chunk smaller than that still takes one. */
    static final int MIN_BUFFER = 4096;
    /** Size classes per doubling: the most a buffer wastes is under a quarter of its chunk. */
    private static final int CLASSES_PER_DOUBLING = 4;

    /** A cached chunk. Pinned while a reader uses its bytes; evicted only when unpinned. */
    public static final class Entry {
        private final int blob;
        private final int chunk;
        /** Reader count; -1 once evicted, after which nobody may pin it again. */
        private final AtomicInteger pins = new AtomicInteger(1);
        private volatile int state = LOADING;
        private volatile boolean referenced = true;
        /** Where the entry sits in the CLOCK ring; -1 when it holds no buffer. */
        private int ringSlot = -1;
        private int sizeClass;
        private int length;
        private NativeBuffer buffer;
        private Exception failure;

        Entry(int blob, int chunk) {
            this.blob = blob;
            this.chunk = chunk;
        }

        boolean tryPin() {
            for (;;) {
                int p = pins.get();
                if (p < 0) {
                    return false;
                }
                if (pins.compareAndSet(p, p + 1)) {
                    return true;
                }
            }
        }

        /** The chunk's uncompressed bytes, valid from 0 to {@link #length()} while pinned. */
        public NativeBuffer buffer() {
            return buffer;
        }

        public int length() {
            return length;
        }
    }

    private final int maxChunkSize;
    private final long capacityBytes;
    /** Buffer size of each class, ascending; the last is at least {@link #maxChunkSize}. */
    private final int[] classSize;

    // Guarded by lock:
    /** Free buffers of each class, a stack per class (grown, never shrunk: no allocation once warm). */
    private final NativeBuffer[][] free;
    private final int[] freeCount;
    /** Bytes of every buffer allocated now: holding a chunk, being loaded, or free. At most capacityBytes. */
    private long allocatedBytes;
    private long freeBytes;
    /** Chunks holding a buffer (loading or ready), the CLOCK's ring; null where a slot is unused. */
    private Entry[] ring = new Entry[64];
    private int ringUsed;
    private int[] ringFree = new int[64];
    private int ringFreeCount;
    private int clockHand;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition bufferReleased = lock.newCondition();
    private final AtomicInteger bufferWaiters = new AtomicInteger();
    /**
     * Per blob, its chunks' entries. Replaced whole (copy on write) when a device's blobs join or
     * leave a shared cache; a reader sees the old or the new array, both valid for its own blobs.
     */
    private volatile AtomicReferenceArray<Entry>[] index;

    private final LongAdder hits = new LongAdder();
    private final LongAdder waits = new LongAdder();
    private final LongAdder misses = new LongAdder();
    private final LongAdder evictions = new LongAdder();
    private final LongAdder bytesLoaded = new LongAdder();
    /** Bytes of pins reserved by {@link #reservePins}. */
    private final java.util.concurrent.atomic.AtomicLong pinReserved = new java.util.concurrent.atomic.AtomicLong();

    /** The smallest useful cache: room for this many of the largest chunks, so concurrent readers rarely wait. */
    public static final int MIN_SLOTS = 4;

    /**
     * @param capacityBytes the bound on cached bytes (at least {@link #MIN_SLOTS} of the largest chunk)
     * @param maxChunkSize the largest chunk any blob holds
     * @param chunksPerBlob how many chunks each blob has, by blob index
     */
    public ChunkCache(long capacityBytes, int maxChunkSize, int[] chunksPerBlob) {
        this(capacityBytes, maxChunkSize);
        addBlobs(chunksPerBlob);
    }

    /**
     * A cache with no blobs yet, to be shared by several devices (the daemon's exports): each adds
     * its blobs with {@link #addBlobs} and gives them back with {@link #removeBlobs}; all of them
     * share the one bound and the one CLOCK, so a busy export takes memory an idle one is not using.
     *
     * @param maxChunkSize the largest chunk any device using this cache may have
     */
    @SuppressWarnings("unchecked")
    public ChunkCache(long capacityBytes, int maxChunkSize) {
        if (maxChunkSize <= 0) {
            throw new IllegalArgumentException("largest chunk size must be positive: " + maxChunkSize);
        }
        this.maxChunkSize = maxChunkSize;
        this.classSize = sizeClasses(maxChunkSize);
        int largest = classSize[classSize.length - 1];
        this.capacityBytes = Math.max((long) MIN_SLOTS * largest, capacityBytes);
        this.free = new NativeBuffer[classSize.length][];
        for (int c = 0; c < classSize.length; c++) {
            free[c] = new NativeBuffer[4];
        }
        this.freeCount = new int[classSize.length];
        this.index = new AtomicReferenceArray[0];
    }

    /** 4 KiB, then {@link #CLASSES_PER_DOUBLING} steps per doubling, up to the first class holding {@code max}. */
    static int[] sizeClasses(int max) {
        int[] sizes = new int[8];
        int n = 0;
        sizes[n++] = MIN_BUFFER;
        for (long base = MIN_BUFFER; sizes[n - 1] < max; base *= 2) {
            for (int step = 1; step <= CLASSES_PER_DOUBLING && sizes[n - 1] < max; step++) {
                long size = base + base * step / CLASSES_PER_DOUBLING;
                if (n == sizes.length) {
                    sizes = Arrays.copyOf(sizes, n * 2);
                }
                sizes[n++] = (int) Math.min(size, Integer.MAX_VALUE - 8);
            }
        }
        return Arrays.copyOf(sizes, n);
    }

    /** The class of the smallest buffer that holds {@code size} bytes. */
    private int classOf(int size) {
        int i = Arrays.binarySearch(classSize, size);
        return i >= 0 ? i : -i - 1;
    }

    /**
     * One device's blobs in a shared cache: blob indexes {@code first .. first+count-1}, and that
     * device's own counters (the cache's are the sum over all devices).
     */
    public static final class Share {
        private final int first;
        private final int count;
        private final LongAdder hits = new LongAdder();
        private final LongAdder waits = new LongAdder();
        private final LongAdder misses = new LongAdder();
        private final LongAdder evictions = new LongAdder();
        private final LongAdder bytesLoaded = new LongAdder();

        Share(int first, int count) {
            this.first = first;
            this.count = count;
        }

        /** The cache-wide index of this device's blob 0. */
        public int first() {
            return first;
        }

        public int count() {
            return count;
        }
    }

    /** Per blob, the share it belongs to (copy on write, as {@link #index}). */
    private volatile Share[] shareOf = new Share[0];

    /** The load workspaces of the stores using this cache (see {@link ChunkStore.WorkspacePool}); freed by {@link #close}. */
    final ChunkStore.WorkspacePool workspaces = new ChunkStore.WorkspacePool();

    /**
     * Adds a device's blobs to the cache; they get the indexes from the returned share's
     * {@link Share#first()} on. Indexes of blobs removed before are not reused (an int lasts for
     * billions of adds).
     */
    @SuppressWarnings("unchecked")
    public synchronized Share addBlobs(int[] chunksPerBlob) {
        AtomicReferenceArray<Entry>[] old = index;
        AtomicReferenceArray<Entry>[] grown = Arrays.copyOf(old, old.length + chunksPerBlob.length);
        Share share = new Share(old.length, chunksPerBlob.length);
        Share[] shares = Arrays.copyOf(shareOf, grown.length);
        for (int b = 0; b < chunksPerBlob.length; b++) {
            grown[old.length + b] = new AtomicReferenceArray<>(chunksPerBlob[b]);
            shares[old.length + b] = share;
        }
        shareOf = shares;
        index = grown;
        return share;
    }

    /** A device's counters and the memory its chunks hold now; capacity is the whole cache's bound. */
    public CacheStats stats(Share s) {
        return new CacheStats(s.hits.sum(), s.misses.sum(), s.waits.sum(), s.evictions.sum(), s.bytesLoaded.sum(),
                residentBytes(s.first, s.count), capacityBytes);
    }

    /**
     * Takes blobs {@code first .. first+count-1} out of the cache when their device closes: their
     * chunks leave it and the memory they held is freed (not kept for other blobs: a removed export
     * gives its memory back to the system). Nobody may read these blobs any more.
     */
    public synchronized void removeBlobs(int first, int count) {
        lock.lock();
        try {
            for (int s = 0; s < ringUsed; s++) {
                Entry owner = ring[s];
                if (owner != null && owner.blob >= first && owner.blob < first + count) {
                    owner.pins.set(-1);
                    leaveRing(owner);
                    owner.buffer.close();
                    allocatedBytes -= classSize[owner.sizeClass];
                }
            }
            bufferReleased.signalAll();
        } finally {
            lock.unlock();
        }
        AtomicReferenceArray<Entry>[] copy = index.clone();
        for (int b = first; b < first + count; b++) {
            copy[b] = new AtomicReferenceArray<>(0); // drops the entries; a stray read fails with an index error
        }
        index = copy;
    }

    /** Bytes of cache memory the chunks of blobs {@code first .. first+count-1} hold now (a device's share). */
    public long residentBytes(int first, int count) {
        long bytes = 0;
        lock.lock();
        try {
            for (int s = 0; s < ringUsed; s++) {
                Entry owner = ring[s];
                if (owner != null && owner.blob >= first && owner.blob < first + count) {
                    bytes += classSize[owner.sizeClass];
                }
            }
        } finally {
            lock.unlock();
        }
        return bytes;
    }

    /**
     * Returns the chunk pinned, loading it on a miss into a buffer of at least {@code size} bytes
     * (its uncompressed size). The caller must {@link #release} it.
     *
     * @throws IOException when loading fails (then every waiter for that load gets the same error,
     *     and the next reader tries again)
     */
    public Entry acquire(int blob, int chunk, int size, Loader loader) throws IOException {
        AtomicReferenceArray<Entry> table = index[blob];
        for (;;) {
            Entry e = table.get(chunk);
            if (e != null) {
                if (e.tryPin()) {
                    if (e.state != READY) {
                        awaitLoad(e);
                        waits.increment(); // shared another reader's load: neither a hit nor a load
                        shareOf[blob].waits.increment();
                    } else {
                        hits.increment();
                        shareOf[blob].hits.increment();
                    }
                    if (!e.referenced) {
                        e.referenced = true;
                    }
                    return e;
                }
                table.compareAndSet(chunk, e, null); // evicted: help unlink it, then look again
                continue;
            }
            if (size <= 0 || size > maxChunkSize) {
                throw new IllegalArgumentException("chunk " + chunk + " of blob " + blob + " has " + size
                        + " bytes; this cache holds chunks of 1 to " + maxChunkSize);
            }
            Entry mine = new Entry(blob, chunk);
            if (!table.compareAndSet(chunk, null, mine)) {
                continue;
            }
            misses.increment();
            shareOf[blob].misses.increment();
            load(mine, size, loader);
            return mine;
        }
    }

    /**
     * The chunk pinned if it is loaded now, else null; never loads and counts nothing (the caller
     * counts its hits with {@link #countHits} once it knows it will use them, so a range that turns
     * out to need a load, and is then acquired again, is not counted twice).
     */
    public Entry tryAcquire(int blob, int chunk) {
        Entry e = index[blob].get(chunk);
        // READY before the pin, so READY after it: only an unpinned entry can be evicted, and a
        // loaded entry never goes back to loading. An entry evicted in between refuses the pin.
        if (e == null || e.state != READY || !e.tryPin()) {
            return null;
        }
        if (!e.referenced) {
            e.referenced = true;
        }
        return e;
    }

    /** Counts {@code n} hits taken with {@link #tryAcquire} of one device's blobs: the cache's and that device's share. */
    public void countHits(Share share, int n) {
        hits.add(n);
        share.hits.add(n);
    }

    /**
     * Memory that a pinned chunk of {@code uncompressedSize} bytes holds (what {@link #reservePins}
     * is asked for): the buffer of its size class.
     */
    public int pinCost(int uncompressedSize) {
        return classSize[classOf(Math.max(1, Math.min(uncompressedSize, maxChunkSize)))];
    }

    /**
     * Takes {@code bytes} of the budget for chunks held pinned across a wait (a transport's request
     * pinned before its reply is written: {@link io.strata.core.device.PinnedRange}). At most half
     * the cache may be held that way, so that a load can always evict from the other half: requests
     * that pin and wait can never starve the loads they wait for. False when the budget is spent.
     */
    public boolean reservePins(long bytes) {
        for (;;) {
            long held = pinReserved.get();
            if (held + bytes > capacityBytes / 2) {
                return false;
            }
            if (pinReserved.compareAndSet(held, held + bytes)) {
                return true;
            }
        }
    }

    /** Gives back budget taken with {@link #reservePins}. */
    public void releasePins(long bytes) {
        pinReserved.addAndGet(-bytes);
    }

    /**
     * True when the chunk is in the cache, loaded: acquiring it now would not load it. A hint for
     * schedulers, read without pinning, so it may be evicted a moment later.
     */
    public boolean isReady(int blob, int chunk) {
        Entry e = index[blob].get(chunk);
        return e != null && e.state == READY;
    }

    private void awaitLoad(Entry e) throws IOException {
        boolean interrupted = false;
        synchronized (e) {
            while (e.state == LOADING) {
                try {
                    e.wait();
                } catch (InterruptedException ie) {
                    interrupted = true;
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        if (e.state == FAILED) {
            e.pins.decrementAndGet();
            Exception f = e.failure;
            if (f instanceof IOException) {
                throw (IOException) f;
            }
            throw new IOException(f.getMessage(), f);
        }
    }

    private void load(Entry e, int size, Loader loader) throws IOException {
        try {
            takeBuffer(e, classOf(size));
            e.length = loader.load(e.blob, e.chunk, e.buffer);
            bytesLoaded.add(e.length);
            shareOf[e.blob].bytesLoaded.add(e.length);
            synchronized (e) {
                e.state = READY;
                e.notifyAll();
            }
        } catch (IOException | RuntimeException | Error ex) {
            // Errors too (a native library that fails to load): waiters must never wait forever.
            index[e.blob].compareAndSet(e.chunk, e, null);
            e.pins.set(-1);
            e.failure = ex instanceof Error ? new IOException("loading the chunk failed: " + ex, ex) : (Exception) ex;
            if (e.buffer != null) {
                returnBuffer(e);
            }
            synchronized (e) {
                e.state = FAILED;
                e.notifyAll();
            }
            throw ex;
        }
    }

    /**
     * Unpins a chunk and, if nobody else uses it, frees its buffer at once: for chunks that will not
     * be read from the cache again (a stored chunk, once verified, is served from its file).
     */
    public void releaseAndDiscard(Entry e) {
        if (e.pins.compareAndSet(1, -1)) {
            index[e.blob].compareAndSet(e.chunk, e, null);
            returnBuffer(e);
        } else {
            release(e);
        }
    }

    /**
     * Run (under the lock) when a load found every buffer pinned, before it waits: a test releases a
     * pin here to hit the window between the failed eviction and the wait. Null in production.
     */
    static volatile Runnable afterFailedEvictionForTest;

    /** Unpins a chunk returned by {@link #acquire}. */
    public void release(Entry e) {
        if (e.pins.decrementAndGet() == 0 && bufferWaiters.get() > 0) {
            lock.lock();
            try {
                bufferReleased.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * Gives {@code owner} a buffer of class {@code c} and a place in the ring. A new buffer is
     * allocated outside the lock: the JDK zeroes a direct buffer when it allocates it, and the first
     * write to each of its pages is a page fault (about half a cold read's CPU, docs/benchmarks.md
     * "Cold read"), which under the lock made every other load wait for it.
     */
    private void takeBuffer(Entry owner, int c) {
        int size = classSize[c];
        lock.lock();
        try {
            for (;;) {
                NativeBuffer b = null;
                if (freeCount[c] > 0) {
                    b = free[c][--freeCount[c]];
                    free[c][freeCount[c]] = null;
                    freeBytes -= size;
                } else if (allocatedBytes + size <= capacityBytes) {
                    allocatedBytes += size; // reserved now, so no other load can take the same room
                    lock.unlock();
                    try {
                        b = NativeBuffer.allocate(size);
                    } catch (RuntimeException | Error ex) {
                        lock.lock();
                        allocatedBytes -= size;
                        bufferReleased.signalAll();
                        throw ex; // the finally below unlocks
                    }
                    lock.lock();
                } else if (freeBytes > 0) {
                    dropFreeBuffer(); // memory parked in another class: give it back, then try again
                    continue;
                } else if (evictOne()) {
                    continue; // its buffer is free now: reuse it, or give it back for this class
                }
                if (b != null) {
                    owner.buffer = b;
                    owner.sizeClass = c;
                    joinRing(owner);
                    return;
                }
                // Every chunk holding memory is in use by a reader right now: wait for a release.
                // Counted as a waiter first, then one more look: release() reads the count without
                // the lock, so a pin dropped between the eviction that failed above and the count
                // signals nobody, and a wait begun after it would last until some other release.
                Runnable gate = afterFailedEvictionForTest;
                if (gate != null) {
                    gate.run();
                }
                bufferWaiters.incrementAndGet();
                try {
                    if (!evictOne()) {
                        bufferReleased.awaitUninterruptibly();
                    }
                } finally {
                    bufferWaiters.decrementAndGet();
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /** Frees one free buffer, the largest class first (fewest calls to make room). Under the lock. */
    private void dropFreeBuffer() {
        for (int c = classSize.length - 1; c >= 0; c--) {
            if (freeCount[c] > 0) {
                NativeBuffer b = free[c][--freeCount[c]];
                free[c][freeCount[c]] = null;
                b.close();
                freeBytes -= classSize[c];
                allocatedBytes -= classSize[c];
                return;
            }
        }
    }

    /** CLOCK: clear the referenced bit of recently used chunks, evict the first unpinned cold one. Under the lock. */
    private boolean evictOne() {
        for (int scanned = 0; scanned < 2 * ringUsed; scanned++) {
            int s = clockHand;
            clockHand = clockHand + 1 >= ringUsed ? 0 : clockHand + 1;
            Entry victim = ring[s];
            if (victim == null || victim.state != READY) {
                continue;
            }
            if (victim.referenced) {
                victim.referenced = false;
                continue;
            }
            if (victim.pins.compareAndSet(0, -1)) {
                index[victim.blob].compareAndSet(victim.chunk, victim, null);
                parkBuffer(victim);
                evictions.increment();
                shareOf[victim.blob].evictions.increment();
                return true;
            }
        }
        return false;
    }

    /** Puts a chunk that leaves the cache back: its buffer on its class's free list. */
    private void returnBuffer(Entry e) {
        lock.lock();
        try {
            parkBuffer(e);
            bufferReleased.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** Under the lock: the entry leaves the ring, its buffer goes on the free list of its class. */
    private void parkBuffer(Entry e) {
        int c = e.sizeClass;
        leaveRing(e);
        if (freeCount[c] == free[c].length) {
            free[c] = Arrays.copyOf(free[c], free[c].length * 2);
        }
        free[c][freeCount[c]++] = e.buffer;
        freeBytes += classSize[c];
    }

    private void joinRing(Entry e) {
        int s;
        if (ringFreeCount > 0) {
            s = ringFree[--ringFreeCount];
        } else {
            if (ringUsed == ring.length) {
                ring = Arrays.copyOf(ring, ring.length * 2);
            }
            s = ringUsed++;
        }
        ring[s] = e;
        e.ringSlot = s;
    }

    private void leaveRing(Entry e) {
        int s = e.ringSlot;
        ring[s] = null;
        e.ringSlot = -1;
        if (ringFreeCount == ringFree.length) {
            ringFree = Arrays.copyOf(ringFree, ringFree.length * 2);
        }
        ringFree[ringFreeCount++] = s;
    }

    /** The largest chunk this cache holds (buffers for load workspaces are sized by it). */
    public int maxChunkSize() {
        return maxChunkSize;
    }

    public long capacityBytes() {
        return capacityBytes;
    }

    /** Bytes of native memory the cache holds now, chunks and free buffers (at most {@link #capacityBytes}). */
    long allocatedBytes() {
        lock.lock();
        try {
            return allocatedBytes;
        } finally {
            lock.unlock();
        }
    }

    public CacheStats stats() {
        long resident;
        lock.lock();
        try {
            resident = allocatedBytes - freeBytes;
        } finally {
            lock.unlock();
        }
        return new CacheStats(hits.sum(), misses.sum(), waits.sum(), evictions.sum(), bytesLoaded.sum(), resident, capacityBytes);
    }

    @Override
    public void close() {
        lock.lock();
        try {
            for (int s = 0; s < ringUsed; s++) {
                Entry e = ring[s];
                if (e != null) {
                    e.buffer.close();
                    ring[s] = null;
                }
            }
            for (int c = 0; c < classSize.length; c++) {
                for (int i = 0; i < freeCount[c]; i++) {
                    free[c][i].close();
                    free[c][i] = null;
                }
                freeCount[c] = 0;
            }
            ringUsed = 0;
            ringFreeCount = 0;
            allocatedBytes = 0;
            freeBytes = 0;
            workspaces.close();
        } finally {
            lock.unlock();
        }
    }
}
