package io.strata.core.image;

import io.strata.core.chunk.ChunkTable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the image's prefetch table asks to fetch first: for each entry (a nid; a directory stands
 * for every file below it, as Nydus's prefetch does), the chunks its chunk indexes name, in table
 * order and file order, each chunk once. A chunk is named by its blob and its compressed range in
 * that blob: what a remote blob fetches.
 *
 * <p>The plan walks the bootstrap's directory tree once from the root, so it also knows a path for
 * each entry (an entry no directory reaches keeps a null path; its own chunks are still planned).
 */
public final class PrefetchPlan {
    /** One prefetch table entry: its nid, a path that reaches it (null if none), and whether it is a directory. */
    public record Entry(long nid, String path, boolean directory) {
    }

    /** One chunk to fetch: blob index, and the chunk's compressed bytes in that blob. */
    public record Chunk(int blob, long compressedOffset, int compressedSize) {
    }

    private final List<Entry> entries;
    private final List<Chunk> chunks;
    private final long compressedBytes;

    private PrefetchPlan(List<Entry> entries, List<Chunk> chunks) {
        this.entries = entries;
        this.chunks = chunks;
        long sum = 0;
        for (Chunk c : chunks) {
            sum += c.compressedSize();
        }
        this.compressedBytes = sum;
    }

    /** Reads the bootstrap again from {@code image.path()} (it must be the file that was validated). */
    public static PrefetchPlan of(RafsImage image) throws IOException {
        return of(image, null, true);
    }

    /**
     * The plan from the blobs' chunk tables already built ({@code ChunkTable.buildAll(image)}; null
     * builds them). Without {@code withPaths} every entry's path is null: that skips a walk of the
     * whole directory tree (a large share of the planning time of an image with tens of thousands
     * of files), for a caller that needs only the chunks (the prefetcher, racing the first reads).
     */
    public static PrefetchPlan of(RafsImage image, ChunkTable[] tables, boolean withPaths) throws IOException {
        if (image.prefetchNids().length == 0) {
            return new PrefetchPlan(List.of(), List.of());
        }
        return of(image, RafsImage.read(image.path()), tables, withPaths);
    }

    /**
     * As {@link #of(RafsImage, ChunkTable[], boolean)}, from the bootstrap's bytes the image was
     * parsed from ({@link RafsImage#read}, {@link RafsImage#parse}): a server that has them in hand
     * plans without reading the file again.
     */
    public static PrefetchPlan of(RafsImage image, ByteBuffer data, ChunkTable[] tables, boolean withPaths) throws IOException {
        long[] nids = image.prefetchNids();
        if (nids.length == 0) {
            return new PrefetchPlan(List.of(), List.of());
        }
        if (data.remaining() != image.fileSize()) {
            throw new ImageFormatException(image.path(), "file size", data.remaining(),
                    "changed since the bootstrap was opened (" + image.fileSize() + " bytes)");
        }
        return new Planner(image, data.slice(), tables == null ? ChunkTable.buildAll(image) : tables).plan(nids, withPaths);
    }

    public List<Entry> entries() {
        return entries;
    }

    /** The chunks to fetch, in table order then file order, each once. */
    public List<Chunk> chunks() {
        return chunks;
    }

    /** Sum of the planned chunks' compressed sizes. */
    public long compressedBytes() {
        return compressedBytes;
    }

    private static final class Planner {
        private final RafsImage image;
        private final ByteBuffer data;
        private final ErofsSuperblock sb;
        private final ChunkTable[] tables;
        private final int deviceMask;
        /** Per blob, the chunks (table indexes) already planned. */
        private final java.util.BitSet[] chunkSeen;
        private final List<Chunk> chunks = new ArrayList<>();

        Planner(RafsImage image, ByteBuffer data, ChunkTable[] tables) {
            this.image = image;
            this.data = data;
            this.sb = image.superblock();
            this.tables = tables;
            this.chunkSeen = new java.util.BitSet[tables.length];
            for (int b = 0; b < tables.length; b++) {
                chunkSeen[b] = new java.util.BitSet(tables[b].size());
            }
            int devices = image.devices().size();
            // The kernel's mask (erofs_init_devices): the bits above it carry Nydus's chunk index.
            this.deviceMask = devices == 0 ? 0 : LegacyBootstrap.roundupPowerOfTwo(devices + 1) - 1;
        }

        PrefetchPlan plan(long[] nids, boolean withPaths) throws ImageFormatException {
            Map<Long, String> paths = withPaths ? paths(nids) : Map.of();
            List<Entry> entries = new ArrayList<>(nids.length);
            // Indexed by nid once decodeChecked has accepted it: a slot inside a bootstrap of under 2 GiB,
            // so below 2^26 and safe as an int.
            java.util.BitSet inodeSeen = new java.util.BitSet();
            LegacyBootstrap.DirentBudget budget = new LegacyBootstrap.DirentBudget(image, data);
            for (long nid : nids) {
                ErofsInode inode = LegacyBootstrap.decodeChecked(image, data, sb, nid);
                entries.add(new Entry(nid, paths.get(nid), inode.isDirectory()));
                // Depth-first in directory order: the files of one directory stay together.
                ArrayDeque<Long> work = new ArrayDeque<>();
                work.push(nid);
                while (!work.isEmpty()) {
                    long n = work.pop();
                    ErofsInode in = n == nid ? inode : LegacyBootstrap.decodeChecked(image, data, sb, n);
                    if (inodeSeen.get((int) n)) {
                        continue; // a hard link, a directory listed twice, or a loop in a hostile image
                    }
                    inodeSeen.set((int) n);
                    if (in.isDirectory()) {
                        List<ErofsDirent> children = LegacyBootstrap.directoryEntries(image, data, in, budget);
                        for (int k = children.size() - 1; k >= 0; k--) {
                            ErofsDirent d = children.get(k);
                            if (!d.name().equals(".") && !d.name().equals("..")) {
                                work.push(d.nid());
                            }
                        }
                    } else if (in.dataLayout() == ErofsInode.LAYOUT_CHUNK_BASED) {
                        addChunks(in);
                    }
                }
            }
            return new PrefetchPlan(List.copyOf(entries), List.copyOf(chunks));
        }

        /** A path for each wanted nid: breadth-first from the root, the first name found. */
        private Map<Long, String> paths(long[] nids) throws ImageFormatException {
            Set<Long> wanted = new HashSet<>();
            for (long n : nids) {
                wanted.add(n);
            }
            Map<Long, String> found = new HashMap<>();
            Set<Long> seen = new HashSet<>();
            LegacyBootstrap.DirentBudget budget = new LegacyBootstrap.DirentBudget(image, data);
            ArrayDeque<Long> work = new ArrayDeque<>();
            ArrayDeque<String> names = new ArrayDeque<>();
            work.add((long) sb.rootNid());
            names.add("/");
            while (!work.isEmpty() && found.size() < wanted.size()) {
                long nid = work.poll();
                String path = names.poll();
                if (!seen.add(nid)) {
                    continue;
                }
                if (wanted.contains(nid)) {
                    found.putIfAbsent(nid, path);
                }
                ErofsInode inode = LegacyBootstrap.decodeChecked(image, data, sb, nid);
                if (inode.isDirectory()) {
                    for (ErofsDirent d : LegacyBootstrap.directoryEntries(image, data, inode, budget)) {
                        if (!d.name().equals(".") && !d.name().equals("..")) {
                            work.add(d.nid());
                            names.add(path.endsWith("/") ? path + d.name() : path + "/" + d.name());
                        }
                    }
                }
            }
            return found;
        }

        private void addChunks(ErofsInode inode) throws ImageFormatException {
            if ((inode.chunkFormat() & ErofsInode.CHUNK_FORMAT_INDEXES) == 0) {
                return; // a 4-byte block map addresses device 0 (the bootstrap): no blob data
            }
            long at = inode.chunkIndexOffset();
            long count = inode.chunkCount();
            if (at + count * ErofsInode.CHUNK_INDEX_SIZE > data.capacity()) {
                throw new ImageFormatException(image.path(), "inode " + inode.nid() + " chunk indexes", count,
                        "run past the end of the bootstrap");
            }
            for (long i = 0; i < count; i++) {
                ErofsChunkIndex idx = ErofsChunkIndex.decode(data, (int) (at + i * ErofsInode.CHUNK_INDEX_SIZE));
                int device = idx.deviceId() & deviceMask;
                if (idx.isHole() || device == 0) {
                    continue;
                }
                if (device > tables.length) {
                    throw new ImageFormatException(image.path(), "inode " + inode.nid() + " chunk " + i + " device_id",
                            idx.deviceId(), "names device " + device + " but the image has " + tables.length);
                }
                int blob = device - 1;
                ChunkTable t = tables[blob];
                int c = t.find(idx.blkaddr() * RafsImage.BLOCK_SIZE);
                if (c < 0) {
                    continue; // no chunk there: the device reads zeros, nothing to fetch
                }
                if (!chunkSeen[blob].get(c)) {
                    chunkSeen[blob].set(c);
                    chunks.add(new Chunk(blob, t.compressedOffset(c), t.compressedSize(c)));
                }
            }
        }
    }
}
