package io.strata.builder.tree;

import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * One inode of the image being built: its kind, metadata, xattrs and payload (children, file
 * content, symlink target or device number). Several directory entries may name one node (hard
 * links). {@code layer} is the index of the layer that last wrote the entry, so that whiteouts hide
 * only what lower layers supplied.
 */
public final class Node {
    private final FileKind kind;
    private int permissions;
    private long uid;
    private long gid;
    private long mtime;
    private int mtimeNsec;
    private SortedMap<String, byte[]> xattrs = Collections.emptySortedMap();
    private int rdevMajor;
    private int rdevMinor;
    private byte[] symlinkTarget;
    private FileContent content;
    private final TreeMap<Name, Node> children;
    /**
     * For a directory: the layer that wrote each child's name when that is above the child's own
     * {@link #layer()} (a hard link a layer made to a lower layer's file: the name belongs to the
     * linking layer, the inode to the lower one). Null until the first such link.
     */
    private Map<Name, Integer> linkLayers;
    private int layer;

    public Node(FileKind kind) {
        this.kind = kind;
        this.children = kind == FileKind.DIRECTORY ? new TreeMap<>() : null;
    }

    public FileKind kind() {
        return kind;
    }

    public boolean isDirectory() {
        return kind == FileKind.DIRECTORY;
    }

    /** Permission bits, including set-uid, set-gid and sticky ({@code 07777}). */
    public int permissions() {
        return permissions;
    }

    /** {@code st_mode}: type bits and permissions. */
    public int mode() {
        return kind.typeBits | permissions;
    }

    public long uid() {
        return uid;
    }

    public long gid() {
        return gid;
    }

    public long mtime() {
        return mtime;
    }

    public int mtimeNsec() {
        return mtimeNsec;
    }

    public SortedMap<String, byte[]> xattrs() {
        return xattrs;
    }

    public int rdevMajor() {
        return rdevMajor;
    }

    public int rdevMinor() {
        return rdevMinor;
    }

    public byte[] symlinkTarget() {
        return symlinkTarget;
    }

    public FileContent content() {
        return content;
    }

    public int layer() {
        return layer;
    }

    /**
     * The layer that wrote the entry {@code name} of this directory, whose node is {@code child}:
     * the child's own layer, or the later layer that made {@code name} a hard link to it.
     */
    int nameLayer(Name name, Node child) {
        Integer linked = linkLayers == null ? null : linkLayers.get(name);
        return linked == null ? child.layer() : Math.max(linked, child.layer());
    }

    /** Records that {@code layer} wrote {@code name} (a hard link), or forgets it when {@code layer} is negative. */
    void setNameLayer(Name name, int layer) {
        if (layer >= 0) {
            if (linkLayers == null) {
                linkLayers = new HashMap<>();
            }
            linkLayers.put(name, layer);
        } else if (linkLayers != null) {
            linkLayers.remove(name);
        }
    }

    /** Children by name, sorted by unsigned bytes; null for non-directories. */
    public TreeMap<Name, Node> children() {
        return children;
    }

    public Node setOwner(long uid, long gid) {
        this.uid = uid;
        this.gid = gid;
        return this;
    }

    public Node setPermissions(int permissions) {
        this.permissions = permissions & 07777;
        return this;
    }

    public Node setMtime(long seconds, int nanos) {
        this.mtime = seconds;
        this.mtimeNsec = nanos;
        return this;
    }

    public Node setXattrs(Map<String, byte[]> xattrs) {
        this.xattrs = xattrs.isEmpty() ? Collections.emptySortedMap() : new TreeMap<>(xattrs);
        return this;
    }

    public Node setXattr(String name, byte[] value) {
        TreeMap<String, byte[]> m = new TreeMap<>(xattrs);
        m.put(name, value);
        this.xattrs = m;
        return this;
    }

    public Node setDevice(int major, int minor) {
        this.rdevMajor = major;
        this.rdevMinor = minor;
        return this;
    }

    public Node setSymlinkTarget(byte[] target) {
        this.symlinkTarget = target;
        return this;
    }

    public Node setContent(FileContent content) {
        this.content = content;
        return this;
    }

    public Node setLayer(int layer) {
        this.layer = layer;
        return this;
    }

    /**
     * Takes another entry's metadata for this directory (a later entry or layer naming it again),
     * xattrs included and replacing these: an upper layer's directory shows only its own xattrs under
     * overlayfs, and tar --acls -x replaces a directory's ACLs with the later entry's (none if it has
     * none). An overlay opaque marker is not an entry's xattr: the tar reader sets it after the layer.
     */
    void copyMetadataFrom(Node other) {
        this.permissions = other.permissions;
        this.uid = other.uid;
        this.gid = other.gid;
        this.mtime = other.mtime;
        this.mtimeNsec = other.mtimeNsec;
        this.xattrs = other.xattrs;
        this.layer = other.layer;
    }
}
