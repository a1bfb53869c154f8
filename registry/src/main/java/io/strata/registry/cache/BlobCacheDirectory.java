package io.strata.registry.cache;

import io.strata.core.blob.ChunkRanges;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The persistent blob cache: a directory ({@code --cache-dir}, default {@value #DEFAULT_PATH}) of
 * {@link CachedBlobFile}s, optionally bounded by {@code --cache-max} bytes, evicting whole blobs
 * that no process uses, least recently used first.
 *
 * <h2>Several Strata processes on one directory</h2>
 * They never corrupt it, by these rules:
 * <ul>
 *   <li><b>In use = a shared lock.</b> A process using a blob holds a shared {@link FileLock} on its
 *       map file for as long as it has the blob open. Eviction needs that map's exclusive lock and
 *       only ever {@code tryLock}s it, so it skips a blob in use instead of waiting or deleting it.</li>
 *   <li><b>Opening and evicting exclude each other.</b> Opening a blob (creating its files, taking its
 *       shared lock) happens under a shared lock on {@code .lock} in the directory; eviction holds
 *       that lock exclusively. So eviction never deletes files a process is about to lock.</li>
 *   <li><b>Maps are made or repaired by one process.</b> A map is reset only by a process holding
 *       its exclusive lock (nobody else has it mapped); its header is never rewritten afterwards.</li>
 *   <li><b>Content-addressed, idempotent data.</b> A data file holds the blob's bytes at their blob
 *       offsets, and a blob id names its content, so whoever writes a chunk writes the same bytes.
 *       A chunk is written only while its bit is clear, under a byte-range lock on the data file,
 *       so present bytes are never overwritten (even by a fetch that returned wrong bytes).</li>
 *   <li><b>Bits are set with an atomic OR</b> (a CAS on the shared mapping, coherent across
 *       processes) after the chunk's bytes are fdatasync'ed; they are cleared with an atomic AND.</li>
 *   <li>Every chunk read from the cache is still checked against its digest by the chunk store, so
 *       a damaged cache costs a refetch ({@code Blob.discard}), never a wrong byte.</li>
 * </ul>
 * POSIX record locks belong to a process, and closing any descriptor of a file drops all of the
 * process's locks on it; so within a process there is one set of open files per directory (shared
 * by every {@code BlobCacheDirectory} object on it), one data channel per blob and one map channel
 * per map, reference counted.
 *
 * Nothing here sets a file's times either (that opens and closes the file).
 *
 * <p>The size of a blob in the cache is the sum of the lengths of its present chunks (recorded in its
 * maps); the least recently used order is by the last-used time in its maps' headers, set when a
 * process opens or closes the blob.
 */
public final class BlobCacheDirectory {
    private static final Logger LOG = LoggerFactory.getLogger(BlobCacheDirectory.class);

    public static final String DEFAULT_PATH = "/var/cache/strata/blobs";
    public static final long UNBOUNDED = Long.MAX_VALUE;
    static final String LOCK_FILE = ".lock";
    /** Blob ids become file names: no separators, no dots (a dot starts the suffix), not too long. */
    private static final Pattern BLOB_ID = Pattern.compile("[A-Za-z0-9_-]{1,200}");

    /** The process's open files of each cache directory, by real path. */
    private static final Map<Path, Shared> SHARED = new ConcurrentHashMap<>();

    private final Path dir;
    private final long maxBytes;
    private final Shared shared;
    /** Bytes stored since the last eviction check: checking is a directory scan, so not every fetch. */
    private final AtomicLong storedSinceCheck = new AtomicLong();
    /** Over-bound warnings: one a minute at most (see {@link #warnOverBound}). */
    private final OncePerMinute overBound = new OncePerMinute();

    /**
     * @param maxBytes the bound of {@code --cache-max}, or {@link #UNBOUNDED}
     */
    public BlobCacheDirectory(Path dir, long maxBytes) throws IOException {
        if (maxBytes <= 0) {
            throw new IllegalArgumentException("cache size bound must be positive: " + maxBytes);
        }
        // A new cache directory is the user's alone (0700): its file names are predictable from public
        // images, and files in it are opened without following symlinks (a link planted there by
        // someone else would have had a root server truncate and overwrite its target).
        if (!Files.isDirectory(dir)) {
            OwnerOnly.directories(dir);
        }
        this.dir = dir.toRealPath();
        this.maxBytes = maxBytes;
        this.shared = SHARED.computeIfAbsent(this.dir, Shared::new);
    }

    public static Path defaultPath() {
        return Path.of(DEFAULT_PATH);
    }

    public Path path() {
        return dir;
    }

    public long maxBytes() {
        return maxBytes;
    }

    /** A blob id the cache can name files after; a hostile image's id fails here with a clear message. */
    static void checkBlobId(String blobId) throws IOException {
        if (!BLOB_ID.matcher(blobId).matches()) {
            throw new IOException("blob id '" + blobId + "' cannot name a cache file (letters, digits, '_' and '-' only)");
        }
    }

    /**
     * Opens a blob's cache files (making or repairing them) and marks the blob in use until
     * {@link #release}. Within a process, opening the same blob and layout again shares the files.
     * {@code sizeSource} is asked (outside every lock) only when the blob's map must be made.
     */
    public CachedBlobFile open(String blobId, ChunkRanges ranges, CachedBlobFile.SizeSource sizeSource) throws IOException {
        checkBlobId(blobId);
        byte[] layout = CachedBlobFile.layoutDigest(ranges);
        String mapName = CachedBlobFile.mapName(blobId, layout);
        long knownSize;
        synchronized (shared) {
            CachedBlobFile open = shared.acquireOpen(mapName);
            if (open != null) {
                return open;
            }
            knownSize = peekSize(dir.resolve(mapName), blobId, ranges, layout);
        }
        if (knownSize < 0) {
            knownSize = sizeSource.size(); // the network, maybe: not under a lock
        }
        CachedBlobFile file;
        synchronized (shared) {
            CachedBlobFile open = shared.acquireOpen(mapName);
            if (open != null) {
                return open;
            }
            FileLock dirLock = shared.lockChannel().lock(0, Long.MAX_VALUE, true);
            try {
                FileChannel data = shared.acquireData(dir, blobId);
                try {
                    file = CachedBlobFile.open(dir, blobId, ranges, layout, data, knownSize, sizeSource);
                } catch (IOException | RuntimeException e) {
                    shared.releaseData(blobId);
                    throw e;
                }
                shared.maps.put(mapName, new MapRef(file));
            } finally {
                dirLock.release();
            }
        }
        LOG.info("cache: blob {}: {}/{} chunks present ({} bytes) in {}", blobId, file.presentCount(),
                ranges.count(), file.cachedBytes(), dir);
        evictIfOverBound();
        return file;
    }

    /** The blob size a map records, read without locks (a hint: checked again under the locks), or -1. */
    private static long peekSize(Path mapPath, String blobId, ChunkRanges ranges, byte[] layout) {
        if (!Files.isRegularFile(mapPath)) {
            return -1;
        }
        // No other channel of this process is open on this map (checked by the caller under the
        // same monitor), so closing this one drops no lock of ours.
        try (FileChannel ch = FileChannel.open(mapPath, java.nio.file.LinkOption.NOFOLLOW_LINKS, StandardOpenOption.READ)) {
            return CachedBlobFile.validSize(ch, blobId, ranges, layout);
        } catch (IOException e) {
            return -1;
        }
    }

    /** Ends one use of a blob opened with {@link #open}; the last use closes its files. */
    public void release(CachedBlobFile file) throws IOException {
        synchronized (shared) {
            String mapName = file.mapPath().getFileName().toString();
            MapRef ref = shared.maps.get(mapName);
            if (ref == null || ref.file != file) {
                throw new IllegalStateException("released twice: " + file);
            }
            if (--ref.uses > 0) {
                return;
            }
            shared.maps.remove(mapName);
            try {
                file.close();
            } finally {
                shared.releaseData(file.blobId());
            }
        }
    }

    /** Notes bytes stored in the cache; now and then checks the bound. */
    void stored(long bytes) {
        if (maxBytes == UNBOUNDED) {
            return;
        }
        long threshold = Math.max(1 << 20, maxBytes / 16);
        if (storedSinceCheck.addAndGet(bytes) >= threshold) {
            storedSinceCheck.set(0);
            try {
                evictIfOverBound();
            } catch (IOException e) {
                LOG.warn("cache: eviction in {} failed: {}", dir, e.toString());
            }
        }
    }

    /** One blob as eviction sees it. */
    record Entry(String blobId, long bytes, long lastUsedMillis, List<Path> maps, Path data) {
    }

    /** The blobs in the directory with their sizes and last use. Call under the directory lock. */
    private List<Entry> scan() throws IOException {
        Map<String, List<Path>> maps = new HashMap<>();
        Map<String, Path> datas = new HashMap<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
            for (Path f : files) {
                String name = f.getFileName().toString();
                int dot = name.indexOf('.');
                if (dot <= 0) {
                    continue; // .lock, and anything not ours
                }
                String id = name.substring(0, dot);
                if (name.endsWith(".map")) {
                    maps.computeIfAbsent(id, k -> new ArrayList<>()).add(f);
                } else if (name.equals(CachedBlobFile.dataName(id))) {
                    datas.put(id, f);
                }
            }
        }
        List<Entry> entries = new ArrayList<>();
        for (String id : union(maps.keySet(), datas.keySet())) {
            List<Path> mine = maps.getOrDefault(id, List.of());
            Path data = datas.get(id);
            long bytes = 0;
            long lastUsed = 0;
            boolean counted = !mine.isEmpty();
            for (Path m : mine) {
                long[] usage = usage(m);
                if (usage == null) {
                    counted = false;
                } else {
                    bytes += usage[0];
                    lastUsed = Math.max(lastUsed, usage[1]);
                }
            }
            if (!counted && data != null) {
                bytes = sizeOf(data); // no map to ask: the file's length bounds what it holds
            }
            if (lastUsed == 0 && data != null) {
                lastUsed = modified(data);
            }
            entries.add(new Entry(id, bytes, lastUsed, mine, data));
        }
        return entries;
    }

    private static List<String> union(java.util.Set<String> a, java.util.Set<String> b) {
        java.util.TreeSet<String> all = new java.util.TreeSet<>(a);
        all.addAll(b);
        return new ArrayList<>(all);
    }

    /** A map's cached bytes and last use; null if torn. Never opens a second channel on a map of ours. */
    private long[] usage(Path map) {
        String name = map.getFileName().toString();
        MapRef open = shared.maps.get(name);
        if (open != null) {
            return new long[] {open.file.cachedBytes(), System.currentTimeMillis()}; // in use now
        }
        try (FileChannel ch = FileChannel.open(map, java.nio.file.LinkOption.NOFOLLOW_LINKS, StandardOpenOption.READ)) {
            return CachedBlobFile.usageOf(ch);
        } catch (IOException e) {
            return null;
        }
    }

    private static long modified(Path p) {
        try {
            return Files.getLastModifiedTime(p).toMillis();
        } catch (IOException e) {
            return 0;
        }
    }

    private static long sizeOf(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return 0;
        }
    }

    /** Bytes the cache holds, as eviction counts them. */
    public long usedBytes() throws IOException {
        synchronized (shared) {
            FileLock dirLock = shared.lockChannel().lock(0, Long.MAX_VALUE, true);
            try {
                return scan().stream().mapToLong(Entry::bytes).sum();
            } finally {
                dirLock.release();
            }
        }
    }

    /**
     * Brings the cache under its bound by deleting whole blobs that no process uses, least recently
     * used first. A blob in use (here or in another process) is never touched: if those alone pass
     * the bound, the cache stays over it and says so. Returns the ids of the evicted blobs.
     */
    public List<String> evictIfOverBound() throws IOException {
        if (maxBytes == UNBOUNDED) {
            return List.of();
        }
        List<String> evicted = new ArrayList<>();
        synchronized (shared) {
            FileLock dirLock = shared.lockChannel().lock(); // exclusive: no process is opening a blob
            try {
                List<Entry> entries = scan();
                long total = entries.stream().mapToLong(Entry::bytes).sum();
                if (total <= maxBytes) {
                    return evicted;
                }
                entries.sort(Comparator.comparingLong(Entry::lastUsedMillis).thenComparing(Entry::blobId));
                for (Entry e : entries) {
                    if (total <= maxBytes) {
                        break;
                    }
                    if (shared.datas.containsKey(e.blobId()) || e.maps().stream()
                            .anyMatch(m -> shared.maps.containsKey(m.getFileName().toString()))) {
                        continue; // in use by this process
                    }
                    if (deleteIfUnused(e)) {
                        total -= e.bytes();
                        evicted.add(e.blobId());
                        LOG.info("cache: evicted blob {} ({} bytes, unused the longest) to stay within {} bytes",
                                e.blobId(), e.bytes(), maxBytes);
                    }
                }
                if (total > maxBytes) {
                    warnOverBound(total);
                }
            } finally {
                dirLock.release();
            }
        }
        return evicted;
    }

    /**
     * Says the cache is over its bound, at most once a minute ({@link OncePerMinute}): with a
     * bound below what is in use (a {@code --cache-max} smaller than one blob), every check finds it
     * over, about once per MiB stored. Holds {@code shared}'s monitor.
     */
    private void warnOverBound(long total) {
        long unsaid = overBound.occurred();
        if (unsaid >= 0) {
            LOG.warn("cache: {} holds {} bytes, over its bound of {}: the rest is in use{}", dir, total, maxBytes,
                    unsaid == 0 ? "" : " (and over it at " + unsaid + " more checks since the last such line)");
        }
    }

    /** Deletes a blob's files if every map of it can be locked exclusively (no process uses it). */
    private boolean deleteIfUnused(Entry e) throws IOException {
        List<FileChannel> channels = new ArrayList<>();
        try {
            for (Path m : e.maps()) {
                FileChannel ch = FileChannel.open(m, java.nio.file.LinkOption.NOFOLLOW_LINKS, StandardOpenOption.READ, StandardOpenOption.WRITE);
                channels.add(ch);
                if (ch.tryLock() == null) {
                    return false; // another process holds it
                }
            }
            for (Path m : e.maps()) {
                Files.deleteIfExists(m);
            }
            if (e.data() != null) {
                Files.deleteIfExists(e.data());
            }
            return true;
        } catch (NoSuchFileException gone) {
            return false;
        } finally {
            for (FileChannel ch : channels) {
                ch.close(); // drops the locks taken here
            }
        }
    }

    @Override
    public String toString() {
        return dir + (maxBytes == UNBOUNDED ? "" : " (at most " + maxBytes + " bytes)");
    }

    /** A map open in this process, and how many blobs use it. */
    static final class MapRef {
        final CachedBlobFile file;
        int uses = 1;

        MapRef(CachedBlobFile file) {
            this.file = file;
        }
    }

    /** A data file open in this process, and how many maps use it. */
    static final class DataRef {
        final FileChannel channel;
        int uses = 1;

        DataRef(FileChannel channel) {
            this.channel = channel;
        }
    }

    /** The files of one cache directory open in this process. Guarded by itself. */
    static final class Shared {
        final Path dir;
        final Map<String, MapRef> maps = new HashMap<>();
        final Map<String, DataRef> datas = new HashMap<>();
        private FileChannel lockChannel;

        Shared(Path dir) {
            this.dir = dir;
        }

        /** The one channel on {@code .lock} of this process; kept open while the process lives. */
        FileChannel lockChannel() throws IOException {
            if (lockChannel == null || !lockChannel.isOpen()) {
                lockChannel = OwnerOnly.openReadWrite(dir.resolve(LOCK_FILE));
            }
            return lockChannel;
        }

        CachedBlobFile acquireOpen(String mapName) {
            MapRef ref = maps.get(mapName);
            if (ref == null) {
                return null;
            }
            ref.uses++;
            return ref.file;
        }

        FileChannel acquireData(Path dir, String blobId) throws IOException {
            DataRef ref = datas.get(blobId);
            if (ref != null) {
                ref.uses++;
                return ref.channel;
            }
            FileChannel ch = OwnerOnly.openReadWrite(dir.resolve(CachedBlobFile.dataName(blobId)));
            datas.put(blobId, new DataRef(ch));
            return ch;
        }

        void releaseData(String blobId) throws IOException {
            DataRef ref = datas.get(blobId);
            if (ref != null && --ref.uses == 0) {
                datas.remove(blobId);
                ref.channel.close();
            }
        }
    }
}
