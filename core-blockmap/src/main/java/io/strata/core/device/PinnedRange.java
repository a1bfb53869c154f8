package io.strata.core.device;

import io.strata.core.buffer.NativeBuffer;
import io.strata.core.chunk.ChunkCache;
import io.strata.core.chunk.ChunkStore;
import io.strata.core.os.OpenFile;
import java.io.IOException;
import java.util.Arrays;

/**
 * A byte range of a device resolved once, its segments recorded with every chunk they need loaded
 * and pinned in the cache: {@link #emit} hands them to a sink as often as needed (a transport sends
 * them once), {@link #release} unpins them. Between the two no chunk can be evicted, so a read that
 * was checked (every digest verified) is sent with exactly the bytes checked, and nothing is loaded
 * again while a connection writes. Reused: one per request slot of a transport, its arrays grow to
 * the largest range seen and are kept, so pinning allocates nothing once warm.
 */
public final class PinnedRange {
    private static final byte FILE = 0;
    private static final byte MEMORY = 1;
    private static final byte CHUNK = 2;
    /** A chunk read once to verify a stored chunk: released with discard, later reads go to its file. */
    private static final byte CHUNK_THEN_FILE = 3;
    private static final byte ZEROS = 4;

    private byte[] kind = new byte[8];
    private Object[] ref = new Object[8];
    private long[] start = new long[8];
    private long[] length = new long[8];
    private int count;
    private int chunks;
    /** Verified stored chunks the range reads from their files: hits the cache never sees. */
    private int storedChunks;
    private ChunkStore store;
    /** Pin budget taken from the cache for this range ({@link ChunkCache#reservePins}), given back on release. */
    private long reserved;
    private ChunkCache reservedFrom;
    private boolean outOfBudget;

    /** Sends the recorded segments, in order, to {@code sink}. */
    public void emit(SegmentSink sink) throws IOException {
        for (int i = 0; i < count; i++) {
            switch (kind[i]) {
                case FILE -> sink.file((OpenFile) ref[i], start[i], length[i]);
                case MEMORY -> sink.memory((NativeBuffer) ref[i], (int) start[i], (int) length[i]);
                case CHUNK, CHUNK_THEN_FILE -> sink.memory(((ChunkCache.Entry) ref[i]).buffer(), (int) start[i], (int) length[i]);
                default -> sink.zeros(length[i]);
            }
        }
    }

    /** Unpins every chunk and forgets the segments; safe to call again, and on an empty range. */
    public void release() {
        for (int i = 0; i < count; i++) {
            if (kind[i] == CHUNK) {
                store.release((ChunkCache.Entry) ref[i]);
            } else if (kind[i] == CHUNK_THEN_FILE) {
                store.releaseAndDiscard((ChunkCache.Entry) ref[i]);
            }
            ref[i] = null;
        }
        count = 0;
        chunks = 0;
        storedChunks = 0;
        store = null;
        outOfBudget = false;
        if (reservedFrom != null) {
            reservedFrom.releasePins(reserved);
            reservedFrom = null;
            reserved = 0;
        }
    }

    /** How many chunks the range holds pinned. */
    public int pinnedChunks() {
        return chunks;
    }

    /** How many verified stored chunks the range reads straight from their files. */
    int storedChunks() {
        return storedChunks;
    }

    /** True when nothing is recorded (before a pin, after a release). */
    public boolean isEmpty() {
        return count == 0 && reservedFrom == null;
    }

    /** Takes {@code bytes} of {@code cache}'s pin budget for this range; false (and remembered) when it is spent. */
    boolean reserve(ChunkCache cache, long bytes) {
        if (!cache.reservePins(bytes)) {
            outOfBudget = true;
            return false;
        }
        reservedFrom = cache;
        reserved += bytes;
        return true;
    }

    /** True when the last pin stopped because the cache's pin budget was spent. */
    boolean outOfBudget() {
        return outOfBudget;
    }

    /** Records a file region, once it is checked to lie inside the file as it is now (see {@link OpenFile#checkHolds}). */
    void addFile(OpenFile file, long position, long len) throws IOException {
        file.checkHolds(position, len);
        add(FILE, file, position, len);
    }

    /** Records a region of a stored chunk already verified, read from its file (see {@link #addFile}). */
    void addVerifiedStored(OpenFile file, long position, long len) throws IOException {
        addFile(file, position, len);
        storedChunks++;
    }

    void addMemory(NativeBuffer buffer, long offset, long len) {
        add(MEMORY, buffer, offset, len);
    }

    void addChunk(ChunkStore owner, ChunkCache.Entry entry, boolean thenFile, long offsetInChunk, long len) {
        store = owner;
        chunks++;
        add(thenFile ? CHUNK_THEN_FILE : CHUNK, entry, offsetInChunk, len);
    }

    void addZeros(long len) {
        if (count > 0 && kind[count - 1] == ZEROS) {
            length[count - 1] += len;
            return;
        }
        add(ZEROS, null, 0, len);
    }

    private void add(byte k, Object r, long s, long len) {
        if (count == kind.length) {
            int n = count * 2;
            kind = Arrays.copyOf(kind, n);
            ref = Arrays.copyOf(ref, n);
            start = Arrays.copyOf(start, n);
            length = Arrays.copyOf(length, n);
        }
        kind[count] = k;
        ref[count] = r;
        start[count] = s;
        length[count] = len;
        count++;
    }

    /**
     * A sink that records what a device's {@code resolve} produces, for devices without chunks (a
     * raw image: file regions and zeros). Memory handed to a sink is valid only during the call, so
     * it cannot be recorded: a device that produces memory implements {@link BlockDevice#pin} itself.
     */
    SegmentSink recorder() {
        return recorder;
    }

    private final SegmentSink recorder = new SegmentSink() {
        @Override
        public void file(OpenFile file, long position, long len) throws IOException {
            addFile(file, position, len);
        }

        @Override
        public void memory(NativeBuffer buffer, int offset, int len) {
            throw new UnsupportedOperationException("this device produces cached memory: it must implement BlockDevice.pin");
        }

        @Override
        public void zeros(long len) {
            addZeros(len);
        }
    };
}
