package io.strata.builder.erofs;

import io.strata.builder.BuildException;
import io.strata.builder.BuildOptions;
import io.strata.builder.tree.FileKind;
import io.strata.builder.tree.FsTree;
import io.strata.builder.tree.Name;
import io.strata.builder.tree.Node;
import io.strata.core.image.ErofsCompactInode;
import io.strata.core.image.ErofsInode;
import io.strata.core.image.RafsImage;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Where every inode and directory block goes in the bootstrap. Inodes follow {@code metaStart} in a
 * depth-first order (a directory, then its other children, then its subdirectories), root first so
 * its nid fits the superblock's 16-bit field; nid 0 is left unused (the reader refuses a root at nid
 * 0). An inode and its xattrs never straddle a block, and an inline tail never crosses one (the kernel
 * reads it from the inode's block); data that cannot be inline goes to whole blocks after the inodes.
 */
final class MetaLayout {
    static final int BLOCK = RafsImage.BLOCK_SIZE;
    /** The kernel's symlink readers stop at PAGE_SIZE - 1 bytes. */
    static final int MAX_SYMLINK = BLOCK - 1;

    final List<ImageInode> inodes = new ArrayList<>();
    final Map<Node, ImageInode> byNode = new IdentityHashMap<>();
    final long metaStart;
    long plainStart;
    long plainEnd;

    private MetaLayout(long metaStart) {
        this.metaStart = metaStart;
    }

    static MetaLayout plan(FsTree tree, long metaStart, BuildOptions options, XattrFilter xattrs) throws BuildException {
        MetaLayout m = new MetaLayout(metaStart);
        m.collect(tree.root(), "/", null);
        for (ImageInode in : m.inodes) {
            m.shape(in, options, xattrs);
        }
        m.place();
        return m;
    }

    /** Pass 1: inode order and link counts. */
    private void collect(Node dir, String path, ImageInode parent) {
        ImageInode self = add(dir, path);
        self.parent = parent == null ? self : parent;
        for (Map.Entry<Name, Node> e : dir.children().entrySet()) {
            Node child = e.getValue();
            if (child.isDirectory()) {
                continue;
            }
            ImageInode seen = byNode.get(child);
            if (seen == null) {
                ImageInode in = add(child, join(path, e.getKey()));
                in.nlink = 1;
                in.parent = self;
            } else {
                seen.nlink++;
            }
        }
        int subdirs = 0;
        for (Map.Entry<Name, Node> e : dir.children().entrySet()) {
            if (e.getValue().isDirectory()) {
                subdirs++;
                collect(e.getValue(), join(path, e.getKey()), self);
            }
        }
        self.nlink = 2 + subdirs;
    }

    private ImageInode add(Node node, String path) {
        List<Name> names = null;
        if (node.isDirectory()) {
            names = new ArrayList<>(node.children().size() + 2);
            names.add(Name.DOT);
            names.add(Name.DOT_DOT);
            names.addAll(node.children().keySet());
            names.sort(null);
        }
        ImageInode in = new ImageInode(node, path, names, inodes.size() + 1);
        inodes.add(in);
        byNode.put(node, in);
        return in;
    }

    private static String join(String dir, Name name) {
        return dir.endsWith("/") ? dir + name : dir + "/" + name;
    }

    /** Pass 2: size, data layout and inode form of each inode. */
    private void shape(ImageInode in, BuildOptions options, XattrFilter xattrs) throws BuildException {
        Node n = in.node;
        in.xattrs = xattrs.areaFor(in.path, n.xattrs());
        switch (n.kind()) {
            case REGULAR:
                in.size = n.content().size();
                in.layout = ErofsInode.LAYOUT_CHUNK_BASED;
                in.chunkIndexes = n.content().chunkCount();
                break;
            case DIRECTORY:
                in.size = DirectoryPacker.size(in.names);
                break;
            case SYMLINK:
                byte[] target = n.symlinkTarget();
                if (target == null || target.length == 0 || target.length > MAX_SYMLINK) {
                    throw new BuildException("'" + in.path + "': symlink target must be 1.." + MAX_SYMLINK + " bytes, not "
                            + (target == null ? 0 : target.length));
                }
                in.size = target.length;
                break;
            default:
                in.size = 0;
                in.layout = ErofsInode.LAYOUT_FLAT_PLAIN;
                if (n.kind().isDevice() && (n.rdevMajor() > 0xFFF || n.rdevMinor() > 0xFFFFF || n.rdevMajor() < 0 || n.rdevMinor() < 0)) {
                    throw new BuildException("'" + in.path + "': device " + n.rdevMajor() + ":" + n.rdevMinor()
                            + " does not fit the kernel's 12-bit major, 20-bit minor encoding");
                }
                break;
        }
        in.extended = !ErofsCompactInode.fits(n.uid(), n.gid(), in.nlink, in.size, n.mtime(), n.mtimeNsec(),
                options.buildTime(), 0);
        if (n.kind() == FileKind.DIRECTORY || n.kind() == FileKind.SYMLINK) {
            inlineOrPlain(in);
        }
    }

    /**
     * FLAT_INLINE when the tail (size mod 4096) fits in one block with the inode and its xattrs;
     * else FLAT_PLAIN. A size that is a whole number of blocks is always plain: with FLAT_INLINE the
     * kernel would look for the last full block inline ({@code erofs_map_blocks_flatmode}).
     */
    private static void inlineOrPlain(ImageInode in) {
        long tail = in.size % BLOCK;
        if (tail > 0 && in.headSize() + tail <= BLOCK) {
            in.layout = ErofsInode.LAYOUT_FLAT_INLINE;
            in.inlineBytes = (int) tail;
            in.plainBlocks = in.size / BLOCK;
        } else {
            in.layout = ErofsInode.LAYOUT_FLAT_PLAIN;
            in.inlineBytes = 0;
            in.plainBlocks = (in.size + BLOCK - 1) / BLOCK;
        }
    }

    /** Pass 3: offsets, nids and plain blocks. */
    private void place() throws BuildException {
        long cursor = metaStart + ErofsInode.SLOT_SIZE; // nid 0 stays unused
        for (ImageInode in : inodes) {
            int mustFit = in.layout == ErofsInode.LAYOUT_FLAT_INLINE ? in.recordSize() : in.headSize();
            if (mustFit <= BLOCK && cursor % BLOCK + mustFit > BLOCK) {
                cursor = align(cursor, BLOCK);
            }
            in.offset = cursor;
            in.nid = (cursor - metaStart) / ErofsInode.SLOT_SIZE;
            cursor = align(cursor + in.recordSize(), ErofsInode.SLOT_SIZE);
        }
        if (inodes.get(0).nid > 0xFFFF) {
            throw new BuildException("root nid " + inodes.get(0).nid + " does not fit the superblock's 16 bits");
        }
        plainStart = align(cursor, BLOCK);
        long block = plainStart / BLOCK;
        for (ImageInode in : inodes) {
            if (in.plainBlocks > 0) {
                in.rawBlkaddr = block;
                block += in.plainBlocks;
            }
        }
        plainEnd = block * BLOCK;
        if (plainEnd > Integer.MAX_VALUE) {
            throw new BuildException("the metadata needs " + plainEnd + " bytes; bootstraps over 2 GiB are not supported");
        }
    }

    ImageInode root() {
        return inodes.get(0);
    }

    static long align(long v, long a) {
        return (v + a - 1) / a * a;
    }
}
