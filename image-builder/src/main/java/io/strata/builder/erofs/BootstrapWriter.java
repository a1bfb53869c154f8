package io.strata.builder.erofs;

import io.strata.builder.BuildException;
import io.strata.builder.BuildListener;
import io.strata.builder.BuildOptions;
import io.strata.builder.data.ChunkRegistry;
import io.strata.builder.data.FinishedBlob;
import io.strata.builder.data.BlobTrailer;
import io.strata.builder.data.StoredChunk;
import io.strata.builder.tree.FileContent;
import io.strata.builder.tree.FsTree;
import io.strata.builder.tree.Name;
import io.strata.builder.tree.Node;
import io.strata.core.image.BlobTableEntry;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.DeviceSlot;
import io.strata.core.image.ErofsChunkIndex;
import io.strata.core.image.ErofsCompactInode;
import io.strata.core.image.ErofsDirent;
import io.strata.core.image.ErofsExtendedInode;
import io.strata.core.image.ErofsInode;
import io.strata.core.image.ErofsSuperblock;
import io.strata.core.image.RafsImage;
import io.strata.core.image.RafsSuperblockExt;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes the bootstrap (Nydus's RAFS v6 meta blob) with the core's structure classes:
 * <pre>
 *   block 0: EROFS superblock at 1024, RAFS extension at 1152, device table at 1408 (one slot per blob)
 *   blob table (256 B per blob), 4 KiB-aligned after the device table
 *   prefetch table (u32 nids, --prefetch), right after the blob table
 *   inodes from meta_blkaddr (with inline xattrs, tails and chunk indexes)
 *   whole directory / symlink blocks
 *   chunk-info table (80 B per file chunk), 4 KiB-aligned; the file padded to 4 KiB
 * </pre>
 * Each blob's uncompressed space is mapped on the flat device at a 512 KiB-aligned block after the
 * bootstrap, as Nydus does, so the kernel's flatdev mode reads chunk {@code blkaddr} of device
 * {@code d} at {@code mapped_blkaddr[d-1] + blkaddr}.
 */
public final class BootstrapWriter {
    static final int BLOCK = RafsImage.BLOCK_SIZE;
    /** Nydus aligns each blob's place on the flat device to 512 KiB (128 blocks). */
    public static final long MAPPED_ALIGN_BLOCKS = 128;

    private BootstrapWriter() {
    }

    /** What was written. */
    public record Written(long bytes, int inodes, long chunkEntries, List<DeviceSlot> devices) {
    }

    public static Written write(Path file, FsTree tree, List<FinishedBlob> blobs, ChunkRegistry registry,
                                BuildOptions options, BuildListener listener) throws IOException {
        int n = blobs.size();
        long devtOff = RafsSuperblockExt.OFFSET + RafsSuperblockExt.SIZE;
        long blobTableOff = MetaLayout.align(devtOff + (long) n * DeviceSlot.SIZE, BLOCK);
        // The prefetch table goes right after the blob table, as Nydus's builder puts it (no blobs:
        // no table, as in Nydus: there is nothing to fetch).
        List<Node> prefetch = PrefetchList.resolve(tree, options.prefetch(), listener);
        if (n == 0 && !prefetch.isEmpty()) {
            listener.warning("prefetch: the image has no data blobs; no prefetch table written");
            prefetch = List.of();
        }
        long prefetchOff = blobTableOff + (long) n * BlobTableEntry.SIZE;
        long prefetchSize = (long) prefetch.size() * RafsImage.PREFETCH_ENTRY_SIZE;
        long metaStart = MetaLayout.align(prefetchOff + prefetchSize, BLOCK);
        XattrFilter xattrs = new XattrFilter();
        MetaLayout layout = MetaLayout.plan(tree, metaStart, options, xattrs);
        xattrs.report(listener);

        long chunkEntries = 0;
        boolean hasXattrs = false;
        for (ImageInode in : layout.inodes) {
            hasXattrs |= in.xattrs.size() > 0;
            if (in.node.content() != null) {
                FileContent c = in.node.content();
                for (int i = 0; i < c.chunkCount(); i++) {
                    if (c.chunk(i) != FileContent.HOLE) {
                        chunkEntries++;
                    }
                }
            }
        }
        long chunkTableOff = layout.plainEnd;
        long size = MetaLayout.align(chunkTableOff + chunkEntries * ChunkInfo.SIZE, BLOCK);
        if (size > Integer.MAX_VALUE) {
            throw new BuildException("the bootstrap would be " + size + " bytes; bootstraps over 2 GiB are not supported");
        }

        List<DeviceSlot> devices = new ArrayList<>(n);
        long mapped = MetaLayout.align(size / BLOCK, MAPPED_ALIGN_BLOCKS);
        for (FinishedBlob b : blobs) {
            long blocks = b.uncompressedSize() / BLOCK;
            devices.add(new DeviceSlot(b.id(), blocks, mapped));
            mapped = MetaLayout.align(mapped + blocks, MAPPED_ALIGN_BLOCKS);
        }
        if (mapped > ErofsChunkIndex.NULL_ADDR) {
            throw new BuildException("the flat device would have " + mapped + " blocks; block addresses are 32-bit");
        }

        ByteBuffer head = ByteBuffer.allocate((int) metaStart).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            devices.get(i).encode(head, (int) devtOff + i * DeviceSlot.SIZE);
            FinishedBlob b = blobs.get(i);
            new BlobTableEntry(b.id(), i, options.chunkSize(), b.chunkCount(), options.compressor().compression().code,
                    options.digest().code, BlobTrailer.FEATURES, b.compressedSize(), b.uncompressedSize(),
                    b.metaInfo().encode()).encode(head, (int) blobTableOff + i * BlobTableEntry.SIZE);
        }
        for (int i = 0; i < prefetch.size(); i++) {
            head.putInt((int) prefetchOff + i * RafsImage.PREFETCH_ENTRY_SIZE, (int) layout.byNode.get(prefetch.get(i)).nid);
        }
        long flags = options.compressor().compression().superFlag | options.digest().superFlag
                | RafsSuperblockExt.FLAG_EXPLICIT_UID_GID | (n > 0 ? RafsSuperblockExt.FLAG_INLINED_CHUNK_DIGEST : 0)
                | (hasXattrs ? RafsSuperblockExt.FLAG_HAS_XATTR : 0);
        new RafsSuperblockExt(flags, blobTableOff, (long) n * BlobTableEntry.SIZE, options.chunkSize(), chunkTableOff,
                chunkEntries * ChunkInfo.SIZE, prefetchSize == 0 ? 0 : prefetchOff, prefetchSize).encode(head);
        int incompat = ErofsSuperblock.INCOMPAT_CHUNKED_FILE | (n > 0 ? ErofsSuperblock.INCOMPAT_DEVICE_TABLE : 0);
        new ErofsSuperblock(0, ErofsSuperblock.COMPAT_RAFS_V6, RafsImage.BLOCK_BITS, 0, (int) layout.root().nid,
                layout.inodes.size(), options.buildTime(), 0, size / BLOCK, metaStart / BLOCK, 0, new byte[16], new byte[16],
                incompat, 0, n, (int) (devtOff / ErofsSuperblock.DEVICE_SLOT_UNIT), 0).encode(head);

        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING);
             SequentialWriter w = new SequentialWriter(ch)) {
            w.write(head.array());
            for (ImageInode in : layout.inodes) {
                w.zeroTo(in.offset);
                w.write(encodeRecord(in, layout, registry, options));
            }
            w.zeroTo(layout.plainStart);
            for (ImageInode in : layout.inodes) {
                if (in.plainBlocks > 0) {
                    w.zeroTo(in.rawBlkaddr * BLOCK);
                    byte[] data = data(in, layout);
                    w.write(data, 0, (int) Math.min(data.length, in.plainBlocks * BLOCK));
                }
            }
            w.zeroTo(chunkTableOff);
            writeChunkTable(w, layout, registry, options);
            w.zeroTo(size);
        }
        return new Written(size, layout.inodes.size(), chunkEntries, devices);
    }

    /** The inode, its xattrs, then its inline tail or chunk indexes. */
    private static byte[] encodeRecord(ImageInode in, MetaLayout layout, ChunkRegistry registry, BuildOptions options) {
        Node n = in.node;
        ByteBuffer b = ByteBuffer.allocate(in.recordSize()).order(ByteOrder.LITTLE_ENDIAN);
        int format = ErofsInode.formatOf(in.layout);
        int union = union(in, options);
        if (in.extended) {
            new ErofsExtendedInode(format, in.xattrs.icount(), n.mode(), in.size, union, in.ino, n.uid(), n.gid(),
                    n.mtime(), n.mtimeNsec(), in.nlink).encode(b, 0);
        } else {
            // mtime equals the superblock's build time (ErofsCompactInode.fits): offset 0 from the epoch.
            new ErofsCompactInode(format, in.xattrs.icount(), n.mode(), in.nlink, in.size, 0, union, in.ino,
                    (int) n.uid(), (int) n.gid()).encode(b, 0);
        }
        in.xattrs.encode(b, in.inodeSize());
        if (in.layout == ErofsInode.LAYOUT_FLAT_INLINE) {
            byte[] data = data(in, layout);
            b.put(in.headSize(), data, (int) (in.plainBlocks * BLOCK), in.inlineBytes);
        } else if (in.layout == ErofsInode.LAYOUT_CHUNK_BASED) {
            FileContent c = n.content();
            int at = ImageInode.align8(in.headSize());
            for (int i = 0; i < c.chunkCount(); i++) {
                int id = c.chunk(i);
                ErofsChunkIndex idx;
                if (id == FileContent.HOLE) {
                    idx = ErofsChunkIndex.hole();
                } else {
                    StoredChunk s = registry.get(id);
                    idx = ErofsChunkIndex.ofChunk(s.blobIndex(), s.indexInBlob(), s.uncompressedOffset() / BLOCK);
                }
                idx.encode(b, at + i * ErofsChunkIndex.SIZE);
            }
        }
        return b.array();
    }

    private static int union(ImageInode in, BuildOptions options) {
        Node n = in.node;
        switch (n.kind()) {
            case REGULAR:
                return ErofsInode.chunkFormatOf(options.chunkSize());
            case DIRECTORY:
            case SYMLINK:
                return in.plainBlocks > 0 ? (int) in.rawBlkaddr : 0;
            case CHAR_DEVICE:
            case BLOCK_DEVICE:
                return newEncodeDev(n.rdevMajor(), n.rdevMinor());
            default:
                return 0;
        }
    }

    /** The kernel's {@code new_encode_dev()}: what {@code new_decode_dev()} in erofs_read_inode undoes. */
    static int newEncodeDev(int major, int minor) {
        return (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);
    }

    /** A directory's or symlink's data: the packed entries, or the target. */
    private static byte[] data(ImageInode in, MetaLayout layout) {
        Node n = in.node;
        if (!n.isDirectory()) {
            return n.symlinkTarget();
        }
        List<DirEntry> entries = new ArrayList<>(in.names.size());
        for (Name name : in.names) {
            if (name.equals(Name.DOT)) {
                entries.add(new DirEntry(name, in.nid, ErofsDirent.FT_DIR));
            } else if (name.equals(Name.DOT_DOT)) {
                entries.add(new DirEntry(name, in.parent.nid, ErofsDirent.FT_DIR));
            } else {
                Node child = n.children().get(name);
                entries.add(new DirEntry(name, layout.byNode.get(child).nid, child.kind().direntType));
            }
        }
        return DirectoryPacker.encode(entries, in.size);
    }

    /** One entry per file chunk that has data, in inode order (a hard-linked file's chunks once). */
    private static void writeChunkTable(SequentialWriter w, MetaLayout layout, ChunkRegistry registry,
                                        BuildOptions options) throws IOException {
        ByteBuffer e = ByteBuffer.allocate(ChunkInfo.SIZE).order(ByteOrder.LITTLE_ENDIAN);
        for (ImageInode in : layout.inodes) {
            FileContent c = in.node.content();
            if (c == null) {
                continue;
            }
            for (int i = 0; i < c.chunkCount(); i++) {
                int id = c.chunk(i);
                if (id == FileContent.HOLE) {
                    continue;
                }
                StoredChunk s = registry.get(id);
                new ChunkInfo(s.digest(), s.blobIndex(), s.compressed() ? ChunkInfo.FLAG_COMPRESSED : 0, s.compressedSize(),
                        s.uncompressedSize(), s.compressedOffset(), s.uncompressedOffset(), (long) i * options.chunkSize(),
                        s.indexInBlob(), 0).encode(e, 0);
                w.write(e.array());
            }
        }
    }
}
