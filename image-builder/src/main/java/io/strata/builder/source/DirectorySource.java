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
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * A directory on the host as one layer. The walk takes every entry as it is (lstat: symlinks are not
 * followed, devices, fifos and sockets are kept, files with one inode become hard links), in unsigned
 * byte order of names; each file's chunks go to the chunk workers, which read them, as the walk
 * meets it, and one more thread reads every entry's xattrs. Whiteout-looking names are
 * ordinary files here: a directory has no layer below it.
 */
public final class DirectorySource implements ImageSource {
    private static final String ATTRS = "unix:mode,uid,gid,ino,dev,rdev,nlink,size,lastModifiedTime";
    /** The source as given (for messages). */
    private final Path given;
    private final Path givenExclude;
    /** What is walked: the given directory with symlinks resolved, set when the walk starts. */
    private Path root;
    /** The output directory, resolved the same way, so that it is left out however either is spelt. */
    private Path exclude;

    /** A source of {@code root}'s tree, leaving out {@code exclude} (the build's output directory) if it lies inside. */
    public DirectorySource(Path root, Path exclude) {
        this.given = root;
        this.root = root;
        this.givenExclude = exclude;
    }

    /**
     * {@code p} with symlinks resolved as far as it exists: a source given as a symlink to a directory
     * (/lib on a merged-/usr system) is that directory, and an output inside the source reached
     * through another spelling of a parent is still recognised and left out.
     */
    private static Path resolved(Path p) throws IOException {
        Path abs = p.toAbsolutePath().normalize();
        Path existing = abs;
        java.util.Deque<Path> rest = new java.util.ArrayDeque<>();
        while (existing != null && !Files.exists(existing)) {
            rest.push(existing.getFileName());
            existing = existing.getParent();
        }
        Path real = existing == null ? abs.getRoot() : existing.toRealPath();
        while (!rest.isEmpty()) {
            real = real.resolve(rest.pop());
        }
        return real;
    }

    @Override
    public String describe() {
        return given.toString();
    }

    private record InodeKey(Object dev, Object ino) {
    }

    /** A node whose xattrs are still to be read, and the path to read them from. */
    private record XattrJob(Path path, Node node) {
    }

    @Override
    public void addTo(BuildContext ctx) throws IOException {
        root = given.toRealPath();
        exclude = givenExclude == null ? null : resolved(givenExclude);
        ctx.pipeline().onCommitted(ctx::addDone);
        // The total is only for the progress bar: summed on a thread of its own, so the walk that
        // feeds the chunk workers starts at once.
        Thread sizing = new Thread(() -> {
            try {
                ctx.addTotal(dataBytes());
            } catch (IOException e) {
                // the real walk meets the same error and reports it
            }
        }, "strata-size-walk");
        sizing.setDaemon(true);
        sizing.start();
        XattrReader xattrs = new XattrReader();
        try {
            Node rootNode = nodeFor(root, ctx, xattrs, new HashMap<>());
            if (!rootNode.isDirectory()) {
                throw new BuildException(given + ": not a directory");
            }
            FsTree tree = ctx.tree();
            tree.put(EntryPath.ROOT, rootNode);
            // The root node's metadata was copied into the tree's root; its xattrs go there too.
            xattrs.add(root, tree.root());
            walk(root, EntryPath.ROOT, ctx, xattrs, new HashMap<>());
            ctx.pipeline().endLayer();
            xattrs.finish();
        } catch (EntryException e) {
            throw new BuildException(given + ": " + e.getMessage(), e);
        } finally {
            xattrs.cancel();
            sizing.interrupt();
            ctx.pipeline().onCommitted(n -> { });
        }
    }

    /**
     * The total size of the regular files, for the progress bar: a quick walk with the JDK's lstat
     * (which also brings the inodes into the kernel's cache ahead of the real walk).
     */
    private long dataBytes() throws IOException {
        long[] total = new long[1];
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) {
                if (Thread.currentThread().isInterrupted()) {
                    return FileVisitResult.TERMINATE; // the build ended (or failed) first
                }
                return exclude != null && dir.toAbsolutePath().normalize().equals(exclude)
                        ? FileVisitResult.SKIP_SUBTREE : FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
                if (attrs.isRegularFile()) {
                    total[0] += attrs.size();
                }
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFileFailed(Path file, IOException e) {
                return FileVisitResult.CONTINUE; // the real walk reports it
            }
        });
        return total[0];
    }

    /**
     * Reads xattrs on a thread of its own, in walk order, while the walk and the chunk workers go
     * on: binding libc through jnr-ffi costs a few hundred milliseconds on first use.
     */
    private static final class XattrReader {
        private static final XattrJob END = new XattrJob(null, null);
        private final LinkedBlockingQueue<XattrJob> queue = new LinkedBlockingQueue<>();
        private final FutureTask<Void> task = new FutureTask<>(this::run);

        XattrReader() {
            Thread t = new Thread(task, "strata-xattrs");
            t.setDaemon(true);
            t.start();
        }

        void add(Path path, Node node) {
            queue.add(new XattrJob(path, node));
        }

        private Void run() throws IOException, InterruptedException {
            for (XattrJob j = queue.take(); j != END; j = queue.take()) {
                j.node().setXattrs(Xattrs.read(j.path()));
            }
            return null;
        }

        /** Waits until every queued node has its xattrs. */
        void finish() throws IOException {
            queue.add(END);
            try {
                task.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while reading xattrs");
            } catch (ExecutionException e) {
                throw e.getCause() instanceof IOException io ? io : new IOException("reading xattrs failed: " + e.getCause(), e);
            }
        }

        /**
         * Ends the reader after the job it is on. Not by interrupt: an interrupt while jnr-ffi loads
         * its native stub (the first xattr read) fails that load for the rest of the JVM's life
         * ("Unable to write jffi binary stub"), as a failed build's tests then found.
         */
        void cancel() {
            queue.clear();
            queue.add(END);
        }
    }

    private void walk(Path dir, EntryPath at, BuildContext ctx, XattrReader xattrs, Map<InodeKey, Node> linked)
            throws IOException, EntryException {
        TreeMap<Name, Path> children = new TreeMap<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
            for (Path p : s) {
                children.put(Name.of(p.getFileName().toString().getBytes(StandardCharsets.UTF_8)), p);
            }
        }
        for (Map.Entry<Name, Path> e : children.entrySet()) {
            if (exclude != null && e.getValue().toAbsolutePath().normalize().equals(exclude)) {
                ctx.warning("left out " + e.getValue() + ": it is the build's output directory");
                continue;
            }
            EntryPath childPath = at.child(e.getKey());
            Node node = nodeFor(e.getValue(), ctx, xattrs, linked);
            ctx.tree().put(childPath, node);
            if (node.isDirectory()) {
                walk(e.getValue(), childPath, ctx, xattrs, linked);
            }
        }
    }

    /** The node for one path; a second name of a multiply-linked file returns the first name's node. */
    private Node nodeFor(Path p, BuildContext ctx, XattrReader xattrs, Map<InodeKey, Node> linked)
            throws IOException, EntryException {
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
        xattrs.add(p, n);
        switch (kind) {
            case REGULAR:
                long size = (Long) a.get("size");
                FileContent c = new FileContent(size, ctx.options().chunkSize());
                n.setContent(c);
                ctx.pipeline().addFile(c, p);
                break;
            case SYMLINK:
                n.setSymlinkTarget(EntryPath.linkTarget(p.toString(), Files.readSymbolicLink(p).toString()));
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
