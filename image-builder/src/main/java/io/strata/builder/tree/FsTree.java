package io.strata.builder.tree;

import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * The merged file tree of the image. Sources add entries in order; a later entry for a path replaces
 * the earlier one, except that a directory over a directory only takes the new metadata and keeps its
 * children (how tar extraction and layer stacking both behave). Parents that no entry named are
 * created as plain directories owned by root.
 */
public final class FsTree {
    private static final int IMPLICIT_DIR_PERMISSIONS = 0755;

    private final Node root;
    private final long implicitMtime;

    /** A tree whose root and implicit directories get {@code implicitMtime} until an entry names them. */
    public FsTree(long implicitMtime) {
        this.implicitMtime = implicitMtime;
        this.root = implicitDirectory(0);
    }

    public Node root() {
        return root;
    }

    private Node implicitDirectory(int layer) {
        return new Node(FileKind.DIRECTORY).setPermissions(IMPLICIT_DIR_PERMISSIONS).setMtime(implicitMtime, 0).setLayer(layer);
    }

    /** Adds {@code node} at {@code path}, replacing what was there (see the class comment). */
    public void put(EntryPath path, Node node) throws EntryException {
        if (path.isRoot()) {
            if (!node.isDirectory()) {
                throw new EntryException(path.toString(), "names the image root but is a " + node.kind().name().toLowerCase());
            }
            root.copyMetadataFrom(node);
            return;
        }
        Node dir = directoryFor(path, node.layer());
        Node existing = dir.children().get(path.last());
        if (existing != null && existing.isDirectory() && node.isDirectory()) {
            existing.copyMetadataFrom(node);
            return;
        }
        dir.children().put(path.last(), node);
        dir.setNameLayer(path.last(), -1);
    }

    /** Makes {@code path} another name for the file at {@code target} (a hard link). */
    public void link(EntryPath path, EntryPath target, int layer) throws EntryException {
        Node t = lookup(target);
        if (t == null) {
            throw new EntryException(path.toString(), "is a hard link to '" + target + "', which no earlier entry created");
        }
        if (t.isDirectory()) {
            throw new EntryException(path.toString(), "is a hard link to directory '" + target + "'");
        }
        if (path.isRoot()) {
            throw new EntryException(path.toString(), "is a hard link in place of the image root");
        }
        Node dir = directoryFor(path, layer);
        dir.children().put(path.last(), t);
        dir.setNameLayer(path.last(), layer);
    }

    /** The node at {@code path}, or null. Symlinks are not followed. */
    public Node lookup(EntryPath path) {
        Node cur = root;
        for (Name n : path.components()) {
            if (!cur.isDirectory()) {
                return null;
            }
            cur = cur.children().get(n);
            if (cur == null) {
                return null;
            }
        }
        return cur;
    }

    /**
     * An OCI whiteout ({@code .wh.NAME}): removes what layers below {@code layer} supplied at
     * {@code path}; entries of the whiteout's own layer stay (OCI image spec, "Whiteouts"), wherever
     * the whiteout stands among them. A directory is judged as an opaque marker judges its content:
     * its lower entries go, at every depth, and it goes too unless this layer declared it or wrote
     * into it (it removed this layer's own {@code a/y} before, and kept a lower {@code a/x} under an
     * {@code a/} this layer declared again; what umoci's unpack leaves).
     */
    public void whiteout(EntryPath path, int layer) {
        Node dir = lookup(path.parent());
        if (dir == null || !dir.isDirectory() || path.isRoot()) {
            return;
        }
        Node existing = dir.children().get(path.last());
        if (existing == null) {
            return;
        }
        boolean lower = dir.nameLayer(path.last(), existing) < layer;
        boolean remains = existing.isDirectory() && hideLower(existing, layer);
        if (lower && !remains) {
            dir.children().remove(path.last());
            dir.setNameLayer(path.last(), -1);
        }
    }

    /**
     * An OCI opaque marker ({@code .wh..wh..opq}): hides everything under {@code dir} that lower layers
     * supplied, at every depth, wherever the marker stands among its layer's entries: a subdirectory
     * this layer declared again (or wrote into) before the marker keeps only this layer's entries
     * (OCI image spec, "Opaque Whiteout"; what umoci's unpack leaves).
     */
    public void opaque(EntryPath dirPath, int layer) throws EntryException {
        Node dir;
        if (dirPath.isRoot()) {
            dir = root;
        } else {
            Node parent = directoryFor(dirPath, layer);
            dir = parent.children().get(dirPath.last());
            if (dir == null || !dir.isDirectory()) {
                dir = implicitDirectory(layer);
                parent.children().put(dirPath.last(), dir);
            }
        }
        hideLower(dir, layer);
    }

    /**
     * Removes from {@code dir} what layers below {@code layer} supplied: their files, and their
     * directories unless this layer wrote something inside. Returns whether anything remains.
     * A name is judged by the layer that wrote it: a hard link this layer made to a lower layer's
     * file stays, as umoci's unpack keeps it.
     */
    private static boolean hideLower(Node dir, int layer) {
        boolean remains = false;
        for (Iterator<Map.Entry<Name, Node>> it = dir.children().entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<Name, Node> e = it.next();
            Node n = e.getValue();
            boolean keep = n.isDirectory() ? hideLower(n, layer) || n.layer() >= layer : dir.nameLayer(e.getKey(), n) >= layer;
            if (keep) {
                remains = true;
            } else {
                it.remove();
                dir.setNameLayer(e.getKey(), -1);
            }
        }
        return remains;
    }

    private Node directoryFor(EntryPath path, int layer) throws EntryException {
        Node cur = root;
        List<Name> c = path.components();
        StringBuilder walked = new StringBuilder();
        for (int i = 0; i < c.size() - 1; i++) {
            walked.append('/').append(c.get(i));
            Node next = cur.children().get(c.get(i));
            if (next == null) {
                next = implicitDirectory(layer);
                cur.children().put(c.get(i), next);
            } else if (!next.isDirectory()) {
                throw new EntryException(path.toString(), "lies under '" + walked + "', which is a "
                        + next.kind().name().toLowerCase().replace('_', ' ') + ", not a directory");
            }
            cur = next;
        }
        return cur;
    }
}
