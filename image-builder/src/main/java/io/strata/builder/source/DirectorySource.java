package io.strata.builder.source;

import io.strata.builder.BuildException;
import io.strata.builder.tree.EntryException;
import io.strata.builder.tree.EntryPath;
import io.strata.builder.tree.FileContent;
import io.strata.builder.tree.FileKind;
import io.strata.builder.tree.FsTree;
import io.strata.builder.tree.Name;
import io.strata.builder.tree.Node;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;

/**
 * A directory on the host as one layer. The walk takes every entry as it is (lstat: symlinks are not
 * followed, devices, fifos and sockets are kept, files with one inode become hard links), in unsigned
 * byte order of names; then the files' data is read in the same order, by the chunk workers, while
 * one more thread reads every entry's xattrs. Whiteout-looking names are
 * ordinary files here: a directory has no layer below it.
 */
public final class DirectorySource implements ImageSource {
    private static final String ATTRS = "unix:mode,uid,gid,ino,dev,rdev,nlink,size,lastModifiedTime";
    private final Path root;

    public DirectorySource(Path root) {
        this.root = root;
    }

    @Override
    public String describe() {
        return root.toString();
    }

    private record DataFile(Path path, FileContent content) {
    }

    private record InodeKey(Object dev, Object ino) {
    }

    /** A node whose xattrs are still to be read, and the path to read them from. */
    private record XattrJob(Path path, Node node) {
    }

    @Override
    public void addTo(BuildContext ctx) throws IOException {
        FsTree tree = ctx.tree();
        List<DataFile> files = new ArrayList<>();
        List<XattrJob> xattrJobs = new ArrayList<>();
        Map<InodeKey, Node> linked = new HashMap<>();
        Node rootNode = nodeFor(root, ctx, files, xattrJobs, linked);
        if (!rootNode.isDirectory()) {
            throw new BuildException(root + ": not a directory");
        }
        try {
            tree.put(EntryPath.ROOT, rootNode);
            walk(root, EntryPath.ROOT, ctx, files, xattrJobs, linked);
        } catch (EntryException e) {
            throw new BuildException(root + ": " + e.getMessage(), e);
        }
        // The root node's metadata was copied into the tree's root; its xattrs go there too.
        xattrJobs.set(0, new XattrJob(root, tree.root()));
        FutureTask<Void> xattrs = new FutureTask<>(() -> {
            for (XattrJob j : xattrJobs) {
                j.node().setXattrs(Xattrs.read(j.path()));
            }
            return null;
        });
        Thread reader = new Thread(xattrs, "strata-xattrs");
        reader.setDaemon(true);
        reader.start();
        try {
            long total = 0;
            for (DataFile f : files) {
                total += f.content().size();
            }
            ctx.addTotal(total);
            for (DataFile f : files) {
                ctx.pipeline().addFile(f.content(), f.path());
                ctx.addDone(f.content().size());
            }
            ctx.pipeline().endLayer();
            xattrs.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while reading xattrs");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof IOException io ? io : new IOException("reading xattrs failed: " + e.getCause(), e);
        } finally {
            xattrs.cancel(true);
        }
    }

    private void walk(Path dir, EntryPath at, BuildContext ctx, List<DataFile> files, List<XattrJob> xattrJobs,
                      Map<InodeKey, Node> linked) throws IOException, EntryException {
        TreeMap<Name, Path> children = new TreeMap<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
            for (Path p : s) {
                children.put(Name.of(p.getFileName().toString().getBytes(StandardCharsets.UTF_8)), p);
            }
        }
        for (Map.Entry<Name, Path> e : children.entrySet()) {
            EntryPath childPath = at.child(e.getKey());
            Node node = nodeFor(e.getValue(), ctx, files, xattrJobs, linked);
            ctx.tree().put(childPath, node);
            if (node.isDirectory()) {
                walk(e.getValue(), childPath, ctx, files, xattrJobs, linked);
            }
        }
    }

    /** The node for one path; a second name of a multiply-linked file returns the first name's node. */
    private Node nodeFor(Path p, BuildContext ctx, List<DataFile> files, List<XattrJob> xattrJobs,
                         Map<InodeKey, Node> linked) throws IOException {
        Map<String, Object> a = Files.readAttributes(p, ATTRS, LinkOption.NOFOLLOW_LINKS);
        int mode = (Integer) a.get("mode");
        FileKind kind = kindOf(mode, p);
        InodeKey key = null;
        if (kind != FileKind.DIRECTORY && (Integer) a.get("nlink") > 1) {
            key = new InodeKey(a.get("dev"), a.get("ino"));
            Node seen = linked.get(key);
            if (seen != null) {
                return seen;
            }
        }
        Instant mtime = ((FileTime) a.get("lastModifiedTime")).toInstant();
        Node n = new Node(kind)
                .setPermissions(mode)
                .setOwner(Integer.toUnsignedLong((Integer) a.get("uid")), Integer.toUnsignedLong((Integer) a.get("gid")))
                .setMtime(mtime.getEpochSecond(), mtime.getNano());
        xattrJobs.add(new XattrJob(p, n));
        switch (kind) {
            case REGULAR:
                FileContent c = new FileContent((Long) a.get("size"), ctx.options().chunkSize());
                n.setContent(c);
                files.add(new DataFile(p, c));
                break;
            case SYMLINK:
                n.setSymlinkTarget(Files.readSymbolicLink(p).toString().getBytes(StandardCharsets.UTF_8));
                break;
            case CHAR_DEVICE:
            case BLOCK_DEVICE:
                long rdev = (Long) a.get("rdev");
                n.setDevice(major(rdev), minor(rdev));
                break;
            default:
                break;
        }
        if (key != null) {
            linked.put(key, n);
        }
        return n;
    }

    private static FileKind kindOf(int mode, Path p) throws BuildException {
        for (FileKind k : FileKind.values()) {
            if ((mode & 0xF000) == k.typeBits) {
                return k;
            }
        }
        throw new BuildException(p + ": unknown file type in mode " + Integer.toOctalString(mode));
    }

    /** glibc's {@code gnu_dev_major}/{@code gnu_dev_minor} for a 64-bit {@code st_rdev}. */
    static int major(long rdev) {
        return (int) (((rdev >>> 8) & 0xfff) | ((rdev >>> 32) & ~0xfffL));
    }

    static int minor(long rdev) {
        return (int) ((rdev & 0xff) | ((rdev >>> 12) & ~0xffL));
    }
}
