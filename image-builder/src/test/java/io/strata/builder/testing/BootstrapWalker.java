package io.strata.builder.testing;

import io.strata.core.image.ErofsDirent;
import io.strata.core.image.ErofsInode;
import io.strata.core.image.RafsImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Walks a bootstrap's directory tree with the core's struct decoders, for assertions on the layout. */
public final class BootstrapWalker {
    private BootstrapWalker() {
    }

    /** Every path's inode, read from the bootstrap. */
    public static Map<String, ErofsInode> inodes(Path bootstrap) throws IOException {
        ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(bootstrap));
        RafsImage image = RafsImage.parse(bootstrap, buf.duplicate());
        long meta = image.superblock().metaBlkaddr();
        Map<String, ErofsInode> out = new TreeMap<>();
        walk(buf, meta, image.superblock().rootNid(), "/", out);
        return out;
    }

    private static void walk(ByteBuffer buf, long meta, long nid, String path, Map<String, ErofsInode> out) {
        ErofsInode in = ErofsInode.decode(buf, meta, nid);
        out.put(path, in);
        if (!in.isDirectory()) {
            return;
        }
        for (ErofsDirent d : entries(buf, in)) {
            if (d.name().equals(".") || d.name().equals("..")) {
                continue;
            }
            walk(buf, meta, d.nid(), path.equals("/") ? "/" + d.name() : path + "/" + d.name(), out);
        }
    }

    /** A directory's entries in on-disk order. */
    public static List<ErofsDirent> entries(ByteBuffer buf, ErofsInode dir) {
        List<ErofsDirent> all = new ArrayList<>();
        long size = dir.size();
        boolean inline = dir.dataLayout() == ErofsInode.LAYOUT_FLAT_INLINE;
        long full = inline ? size / 4096 : (size + 4095) / 4096;
        for (long b = 0; b < full; b++) {
            int len = (int) Math.min(4096, size - b * 4096);
            all.addAll(ErofsDirent.decodeBlock(buf, (int) ((dir.rawBlkaddr() + b) * 4096), len));
        }
        if (inline && size % 4096 > 0) {
            all.addAll(ErofsDirent.decodeBlock(buf, (int) dir.inlineDataOffset(), (int) (size % 4096)));
        }
        return all;
    }
}
