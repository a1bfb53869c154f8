package io.strata.core.chunk;

import io.strata.core.buffer.NativeBuffer;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Decompressed chunks in off-heap memory, bounded in bytes.
 *
 * <p>Memory is a fixed set of slots, each as large as the largest chunk, allocated on first use and
 * reused after eviction, so a miss allocates no native memory once the cache is warm. Lookup is an
 * array index per blob (no boxing, no hashing): a hit is two atomic operations and no allocation.
 * The first reader of a chunk loads it; concurrent readers of the same chunk wait for that one load.
 * Eviction is CLOCK (second chance) over the slots, skipping chunks that a reader has pinned.
 */
public final class ChunkCache implements AutoCloseable {
    /** Fills a slot with a chunk's uncompressed bytes; returns how many bytes are valid. */
    @FunctionalInterface
    public interface Loader {
        int load(int blob, int chunk, NativeBuffer slot) throws IOException;
    }

    private static final int LOADING = 0;
    private static final int READY = 1;
    private static final int FAILED = 2;

    /** A cached chunk. Pinned while a reader uses its bytes; evicted only when unpinned. */
    public static final class Entry {
        private final int blob;
        private final int chunk;
        /** Reader count; -1 once evicted, after which nobody may pin it again. */
        private final AtomicInteger pins = new AtomicInteger(1);
        private volatile int state = LOADING;
        private volatile boolean referenced = true;
        private int slot = -1;
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

    private final int slotSize;
    private final int maxSlots;
    private final NativeBuffer[] slots;
    private final Entry[] slotOwner;
    private final int[] freeSlots;
    private int freeCount;
    private int allocatedSlots;
    private int clockHand;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition slotReleased = lock.newCondition();
    private final AtomicInteger slotWaiters = new AtomicInteger();
    private final AtomicReferenceArray<Entry>[] index;

    private final LongAdder hits = new LongAdder();
    private final LongAdder waits = new LongAdder();
    private final LongAdder misses = new LongAdder();
    private final LongAdder evictions = new LongAdder();
    private final LongAdder bytesLoaded = new LongAdder();
    /** Bytes of pins reserved by {@link #reservePins}. */
    private final java.util.concurrent.atomic.AtomicLong pinReserved = new java.util.concurrent.atomic.AtomicLong();

    /** The smallest useful cache: enough slots that concurrent readers rarely wait for one. */
    public static final int MIN_SLOTS = 4;

    /**
     * @param capacityBytes the bound on cached bytes (rounded to whole slots, at least {@link #MIN_SLOTS})
     * @param slotSize the largest chunk any blob holds
     * @param chunksPerBlob how many chunks each blob has, by blob index
     */
    @SuppressWarnings("unchecked")
    public ChunkCache(long capacityBytes, int slotSize, int[] chunksPerBlob) {
        this.slotSize = slotSize;
        this.maxSlots = (int) Math.max(MIN_SLOTS, Math.min(Integer.MAX_VALUE / 2, capacityBytes / slotSize));
        this.slots = new NativeBuffer[maxSlots];
        this.slotOwner = new Entry[maxSlots];
        this.freeSlots = new int[maxSlots];
        this.index = new AtomicReferenceArray[chunksPerBlob.length];
        for (int b = 0; b < chunksPerBlob.length; b++) {
            index[b] = new AtomicReferenceArray<>(chunksPerBlob[b]);
        }
    }

    /**
     * Returns the chunk pinned, loading it on a miss. The caller must {@link #release} it.
     *
     * @throws IOException when loading fails (then every waiter for that load gets the same error,
     *     and the next reader tries again)
     */
    public Entry acquire(int blob, int chunk, Loader loader) throws IOException {
        AtomicReferenceArray<Entry> table = index[blob];
        for (;;) {
            Entry e = table.get(chunk);
            if (e != null) {
                if (e.tryPin()) {
                    if (e.state != READY) {
                        awaitLoad(e);
                        waits.increment(); // shared another reader's load: neither a hit nor a load
                    } else {
                        hits.increment();
                    }
                    if (!e.referenced) {
                        e.referenced = true;
                    }
                    return e;
                }
                table.compareAndSet(chunk, e, null); // evicted: help unlink it, then look again
                continue;
            }
            Entry mine = new Entry(blob, chunk);
            if (!table.compareAndSet(chunk, null, mine)) {
                continue;
            }
            misses.increment();
            load(mine, loader);
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

    /** Counts {@code n} hits taken with {@link #tryAcquire}. */
    public void countHits(int n) {
        hits.add(n);
    }

    /**
     * Memory that a pinned chunk of {@code uncompressedSize} bytes holds (what {@link #reservePins}
     * is asked for): its slot.
     */
    public int pinCost(int uncompressedSize) {
        return slotSize;
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
            if (held + bytes > capacityBytes() / 2) {
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

    private void load(Entry e, Loader loader) throws IOException {
        try {
            int slot = takeSlot(e);
            e.slot = slot;
            e.buffer = slots[slot];
            e.length = loader.load(e.blob, e.chunk, e.buffer);
            bytesLoaded.add(e.length);
            synchronized (e) {
                e.state = READY;
                e.notifyAll();
            }
        } catch (IOException | RuntimeException | Error ex) {
            // Errors too (a native library that fails to load): waiters must never wait forever.
            index[e.blob].compareAndSet(e.chunk, e, null);
            e.pins.set(-1);
            e.failure = ex instanceof Error ? new IOException("loading the chunk failed: " + ex, ex) : (Exception) ex;
            if (e.slot >= 0) {
                returnSlot(e.slot);
            }
            synchronized (e) {
                e.state = FAILED;
                e.notifyAll();
            }
            throw ex;
        }
    }

    /**
     * Unpins a chunk and, if nobody else uses it, frees its slot at once: for chunks that will not be
     * read from the cache again (a stored chunk, once verified, is served from its file).
     */
    public void releaseAndDiscard(Entry e) {
        if (e.pins.compareAndSet(1, -1)) {
            index[e.blob].compareAndSet(e.chunk, e, null);
            returnSlot(e.slot);
        } else {
            release(e);
        }
    }

    /** Unpins a chunk returned by {@link #acquire}. */
    public void release(Entry e) {
        if (e.pins.decrementAndGet() == 0 && slotWaiters.get() > 0) {
            lock.lock();
            try {
                slotReleased.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    private int takeSlot(Entry owner) {
        lock.lock();
        try {
            for (;;) {
                int s = -1;
                if (freeCount > 0) {
                    s = freeSlots[--freeCount];
                } else if (allocatedSlots < maxSlots) {
                    s = allocatedSlots;
                    slots[s] = NativeBuffer.allocate(slotSize);
                    allocatedSlots++;
                } else {
                    s = evictOne();
                }
                if (s >= 0) {
                    slotOwner[s] = owner;
                    return s;
                }
                // Every slot holds a chunk that a reader is using right now: wait for a release.
                slotWaiters.incrementAndGet();
                try {
                    slotReleased.awaitUninterruptibly();
                } finally {
                    slotWaiters.decrementAndGet();
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /** CLOCK: clear the referenced bit of recently used chunks, evict the first unpinned cold one. */
    private int evictOne() {
        for (int scanned = 0; scanned < 2 * maxSlots; scanned++) {
            int s = clockHand;
            clockHand = (clockHand + 1) % maxSlots;
            Entry victim = slotOwner[s];
            if (victim == null || victim.state != READY) {
                continue;
            }
            if (victim.referenced) {
                victim.referenced = false;
                continue;
            }
            if (victim.pins.compareAndSet(0, -1)) {
                index[victim.blob].compareAndSet(victim.chunk, victim, null);
                slotOwner[s] = null;
                evictions.increment();
                return s;
            }
        }
        return -1;
    }

    private void returnSlot(int s) {
        lock.lock();
        try {
            slotOwner[s] = null;
            freeSlots[freeCount++] = s;
            slotReleased.signalAll();
        } finally {
            lock.unlock();
        }
    }

    public int slotSize() {
        return slotSize;
    }

    public long capacityBytes() {
        return (long) maxSlots * slotSize;
    }

    public CacheStats stats() {
        int resident;
        lock.lock();
        try {
            resident = allocatedSlots - freeCount;
        } finally {
            lock.unlock();
        }
        return new CacheStats(hits.sum(), misses.sum(), waits.sum(), evictions.sum(), bytesLoaded.sum(),
                (long) resident * slotSize, capacityBytes());
    }

    @Override
    public void close() {
        lock.lock();
        try {
            for (int i = 0; i < allocatedSlots; i++) {
                slots[i].close();
                slots[i] = null;
            }
            allocatedSlots = 0;
        } finally {
            lock.unlock();
        }
    }
}
