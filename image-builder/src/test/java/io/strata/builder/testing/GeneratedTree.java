package io.strata.builder.testing;

import io.strata.core.testing.HostTools;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A tree with every case the builder must get right (issue 5, part 2): all file types, modes with
 * set-uid/set-gid/sticky bits, ids beyond 16 bits, mtimes with nanoseconds (also before 1970),
 * xattrs in user./trusted./security. (binary and long values, on a symlink too), 255-byte and
 * non-ASCII names, names sorting before ".", a directory of many blocks, a deep tree, hard links,
 * empty files and directories, duplicate chunks, written zeros, and optionally a sparse file over
 * 4 GiB. Needs root (mknod, chown, trusted.* xattrs).
 */
public final class GeneratedTree {
    public static final long SPARSE_SIZE = (5L << 30) + 123;

    private final Path root;
    private final long buildTime;
    private final Random random = new Random(5);
    private final List<Path> dirs = new ArrayList<>();

    private GeneratedTree(Path root, long buildTime) {
        this.root = root;
        this.buildTime = buildTime;
    }

    /** Creates the tree under {@code root}; {@code buildTime} is the mtime given to compact-inode candidates. */
    public static Path create(Path root, long buildTime, boolean withHugeSparseFile) throws IOException {
        GeneratedTree t = new GeneratedTree(root, buildTime);
        t.make(withHugeSparseFile);
        return root;
    }

    private void make(boolean huge) throws IOException {
        dir(root);
        // Compact-inode candidates: root-owned, mtime exactly the build time.
        Path empty = file("empty", new byte[0]);
        mtime(empty, Instant.ofEpochSecond(buildTime));
        Path plain = file("compact.txt", "fits a compact inode\n".getBytes(StandardCharsets.UTF_8));
        mtime(plain, Instant.ofEpochSecond(buildTime));

        Path small = file("small.txt", "hello, strata\n".getBytes(StandardCharsets.UTF_8));
        owner(small, 1000, 1000);
        mtime(small, Instant.ofEpochSecond(1_700_000_000L, 123_456_789));
        file("exact-4096", bytes(4096));
        file("boundary-4097", bytes(4097));
        byte[] multi = bytes((7 << 20) / 2);
        file("multi-chunk.bin", multi);
        file("copy-of-multi-chunk.bin", multi);
        byte[] block = bytes(1 << 20);
        byte[] repeating = new byte[3 << 20];
        for (int i = 0; i < 3; i++) {
            System.arraycopy(block, 0, repeating, i << 20, block.length);
        }
        file("repeating.bin", repeating);
        byte[] zeroTail = new byte[3 << 20];
        System.arraycopy(block, 0, zeroTail, 0, block.length);
        file("zero-tail.bin", zeroTail);
        file("all-zero-written.bin", new byte[(2 << 20) + 100]);
        if (huge) {
            Path sparse = root.resolve("sparse-5g.img");
            try (RandomAccessFile f = new RandomAccessFile(sparse.toFile(), "rw")) {
                f.setLength(SPARSE_SIZE);
                f.seek(0);
                f.write(bytes(100));
                f.seek((4L << 30) + 5);
                f.write(bytes(70_000));
                f.seek(SPARSE_SIZE - 50);
                f.write(bytes(50));
            }
        }

        mode(file("setuid", bytes(10)), 04755);
        mode(file("setgid", bytes(10)), 02711);
        Path sticky = dir(root.resolve("sticky-dir"));
        mode(sticky, 01777);
        mode(file("no-permissions", bytes(10)), 0);
        Path bigIds = file("big-ids", bytes(10));
        owner(bigIds, 70_000, 80_000);
        // The JDK clamps times before 1970 to 0 when setting them; touch does not.
        HostTools.run(List.of("touch", "-h", "-d", "@-315619200.000000005", file("before-1970", bytes(5)).toString()));
        mtime(file("year-2100", bytes(5)), Instant.ofEpochSecond(4_102_444_800L, 999_999_999));

        Path x = file("xattrs.txt", "has xattrs\n".getBytes(StandardCharsets.UTF_8));
        setfattr(x, "user.plain", "0x31", false);
        StringBuilder all = new StringBuilder("0x");
        for (int i = 0; i < 256; i++) {
            all.append(String.format("%02x", i));
        }
        setfattr(x, "user.binary", all.toString(), false);
        setfattr(x, "trusted.t", "0x74727573746564", false);
        setfattr(x, "security.s", "0x736563", false);
        setfattr(x, "user.long", "0x" + "ab".repeat(2000), false);
        setfattr(x, "user.empty", "", false);
        Path xd = dir(root.resolve("dir-with-xattrs"));
        setfattr(xd, "user.d", "0x64", false);
        setfattr(xd, "trusted.overlay.opaque", "0x79", false);
        file("dir-with-xattrs/inside", bytes(3));

        Path links = dir(root.resolve("links"));
        Path target = file("links/target.txt", "linked\n".getBytes(StandardCharsets.UTF_8));
        dir(links.resolve("sub"));
        Files.createLink(links.resolve("hard1"), target);
        Files.createLink(links.resolve("sub/hard2"), target);
        Path emptyTarget = file("links/empty-target", new byte[0]);
        Files.createLink(links.resolve("empty-hard"), emptyTarget);
        Files.createSymbolicLink(links.resolve("sym-rel"), Path.of("target.txt"));
        Files.createSymbolicLink(links.resolve("sym-abs"), Path.of("/etc/hostname"));
        Files.createSymbolicLink(links.resolve("dangling"), Path.of("no/such/file"));
        Files.createSymbolicLink(links.resolve("sym-dir"), Path.of("sub"));
        Files.createSymbolicLink(links.resolve("sym-long"), Path.of("d/".repeat(2020) + "end"));
        Path symX = links.resolve("sym-with-xattr");
        Files.createSymbolicLink(symX, Path.of("target.txt"));
        setfattr(symX, "trusted.sym", "0x31", true);
        owner(symX, 1234, 4321);
        mtime(symX, Instant.ofEpochSecond(1_600_000_000L, 42));

        Path dev = dir(root.resolve("dev"));
        mknod(dev.resolve("null-like"), "c", 1, 3);
        mknod(dev.resolve("sda1"), "b", 8, 1);
        mknod(dev.resolve("big-numbers"), "c", 300, 70_000);
        mknod(dev.resolve("whiteout"), "c", 0, 0);
        HostTools.run(List.of("mkfifo", dev.resolve("fifo").toString()));
        try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            s.bind(UnixDomainSocketAddress.of(dev.resolve("socket")));
        }

        dir(root.resolve("names"));
        for (String n : List.of("n".repeat(255), "!bang", "-dash", "+plus", "\u00fc-umlaut", "space name",
                "\u65e5\u672c\u8a9e", "a".repeat(253) + "\u00e9")) {
            file("names/" + n, n.getBytes(StandardCharsets.UTF_8));
        }
        dir(root.resolve("big-dir"));
        for (int i = 0; i < 700; i++) {
            file("big-dir/entry-" + String.format("%04d", i) + "-" + "x".repeat(i % 60), bytes(i % 7));
        }
        Path deep = root;
        for (int i = 1; i <= 40; i++) {
            deep = dir(deep.resolve("d" + i));
        }
        Files.write(deep.resolve("leaf.txt"), "deep\n".getBytes(StandardCharsets.UTF_8));
        dir(root.resolve("empty-dir"));

        // Directory mtimes last, deepest first, so creating entries does not change them again.
        for (int i = dirs.size() - 1; i >= 0; i--) {
            mtime(dirs.get(i), Instant.ofEpochSecond(1_650_000_000L + i, i * 1000L));
        }
        mtime(root.resolve("empty-dir"), Instant.ofEpochSecond(buildTime));
    }

    private Path dir(Path p) throws IOException {
        Files.createDirectories(p);
        dirs.add(p);
        return p;
    }

    private Path file(String rel, byte[] data) throws IOException {
        Path p = root.resolve(rel);
        Files.write(p, data);
        return p;
    }

    private byte[] bytes(int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        // Half compressible: runs of a repeated byte.
        for (int i = 0; i < n / 2; i++) {
            b[i] = (byte) (i / 64);
        }
        return b;
    }

    private static void mode(Path p, int mode) throws IOException {
        Files.setAttribute(p, "unix:mode", mode, LinkOption.NOFOLLOW_LINKS);
    }

    private static void owner(Path p, int uid, int gid) throws IOException {
        Files.setAttribute(p, "unix:uid", uid, LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(p, "unix:gid", gid, LinkOption.NOFOLLOW_LINKS);
    }

    private static void mtime(Path p, Instant t) throws IOException {
        Files.getFileAttributeView(p, BasicFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
                .setTimes(FileTime.from(t), null, null);
    }

    private static void setfattr(Path p, String name, String hexValue, boolean noFollow) throws IOException {
        HostTools.requireTool("setfattr", "attr");
        List<String> cmd = new ArrayList<>(List.of("setfattr"));
        if (noFollow) {
            cmd.add("-h");
        }
        cmd.addAll(List.of("-n", name, "-v", hexValue, p.toString()));
        HostTools.run(cmd);
    }

    private static void mknod(Path p, String type, int major, int minor) throws IOException {
        HostTools.run(List.of("mknod", p.toString(), type, Integer.toString(major), Integer.toString(minor)));
    }
}
