package io.strata.builder.testing;

import io.strata.core.testing.HostTools;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;

/**
 * Everything a test compares between a source tree and the mounted image, read with the JDK's unix
 * attribute view (lstat) and, for xattrs, with {@code getfattr}: a tool that shares no code with the
 * builder. Large files are compared byte for byte later instead of hashed here.
 */
public final class TreeSnapshot {
    /** Files at least this big are compared directly ({@link #sameContent}), not hashed. */
    static final long HASH_LIMIT = 64L << 20;

    /** One path's metadata and content identity. */
    public record Entry(String type, int mode, long uid, long gid, long size, FileTime mtime, String content,
                        String linkTarget, long rdev, long ino, Map<String, String> xattrs) {
        Entry withXattrs(Map<String, String> x) {
            return new Entry(type, mode, uid, gid, size, mtime, content, linkTarget, rdev, ino, x);
        }
    }

    private final Path root;
    private final Map<String, Entry> entries;

    private TreeSnapshot(Path root, Map<String, Entry> entries) {
        this.root = root;
        this.entries = entries;
    }

    public Path root() {
        return root;
    }

    public Map<String, Entry> entries() {
        return entries;
    }

    public static TreeSnapshot of(Path root) throws IOException {
        Map<String, Entry> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                String rel = "/" + root.relativize(p).toString();
                out.put(rel.equals("/") ? "/" : rel, entry(p));
            }
        }
        Map<String, Map<String, String>> x = xattrs(root);
        for (Map.Entry<String, Map<String, String>> e : x.entrySet()) {
            Entry en = out.get(e.getKey());
            if (en == null) {
                throw new IllegalStateException("getfattr names " + e.getKey() + ", which the walk did not see");
            }
            out.put(e.getKey(), en.withXattrs(e.getValue()));
        }
        return new TreeSnapshot(root, out);
    }

    private static Entry entry(Path p) throws IOException {
        Map<String, Object> a = Files.readAttributes(p, "unix:mode,uid,gid,size,lastModifiedTime,rdev,ino",
                LinkOption.NOFOLLOW_LINKS);
        int mode = (Integer) a.get("mode");
        String type;
        switch (mode & 0xF000) {
            case 0x8000: type = "file"; break;
            case 0x4000: type = "dir"; break;
            case 0xA000: type = "symlink"; break;
            case 0x2000: type = "chardev"; break;
            case 0x6000: type = "blockdev"; break;
            case 0x1000: type = "fifo"; break;
            case 0xC000: type = "socket"; break;
            default: type = "unknown"; break;
        }
        long size = (Long) a.get("size");
        String content = null;
        if (type.equals("file")) {
            content = size >= HASH_LIMIT ? "(compared directly)" : sha256(p);
        }
        String target = type.equals("symlink") ? Files.readSymbolicLink(p).toString() : null;
        return new Entry(type, mode, Integer.toUnsignedLong((Integer) a.get("uid")), Integer.toUnsignedLong((Integer) a.get("gid")),
                type.equals("dir") ? -1 : size, (FileTime) a.get("lastModifiedTime"), content, target,
                type.endsWith("dev") ? (Long) a.get("rdev") : 0, (Long) a.get("ino"), Map.of());
    }

    static String sha256(Path p) throws IOException {
        try (InputStream in = Files.newInputStream(p)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** getfattr -R -h -d -m - -e hex: every xattr of every path under root, names and hex values. */
    static Map<String, Map<String, String>> xattrs(Path root) throws IOException {
        HostTools.requireTool("getfattr", "attr");
        String out = HostTools.run(List.of("getfattr", "-R", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names",
                root.toString()));
        Map<String, Map<String, String>> result = new TreeMap<>();
        String current = null;
        String prefix = root.toString();
        for (String line : out.split("\n")) {
            if (line.startsWith("# file: ")) {
                String abs = unescape(line.substring("# file: ".length()));
                String rel = abs.equals(prefix) ? "/" : abs.substring(prefix.length());
                current = rel;
                result.put(current, new TreeMap<>());
            } else if (!line.isBlank() && current != null) {
                int eq = line.indexOf('=');
                String name = eq < 0 ? line : line.substring(0, eq);
                String value = eq < 0 ? "" : line.substring(eq + 1);
                result.get(current).put(unescape(name), value);
            }
        }
        return result;
    }

    /** getfattr writes bytes outside printable ASCII, and backslashes, as \ooo octal escapes. */
    static String unescape(String s) {
        java.io.ByteArrayOutputStream b = new java.io.ByteArrayOutputStream();
        byte[] raw = s.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < raw.length; i++) {
            if (raw[i] == '\\' && i + 3 < raw.length + 0 && isOctal(raw, i + 1)) {
                b.write(Integer.parseInt(new String(raw, i + 1, 3, StandardCharsets.US_ASCII), 8));
                i += 3;
            } else {
                b.write(raw[i]);
            }
        }
        return b.toString(StandardCharsets.UTF_8);
    }

    private static boolean isOctal(byte[] raw, int at) {
        if (at + 3 > raw.length) {
            return false;
        }
        for (int i = at; i < at + 3; i++) {
            if (raw[i] < '0' || raw[i] > '7') {
                return false;
            }
        }
        return true;
    }

    /** Groups of paths that share an inode (hard links), as sorted path sets. */
    public Set<Set<String>> linkGroups() {
        Map<Long, Set<String>> byIno = new TreeMap<>();
        for (Map.Entry<String, Entry> e : entries.entrySet()) {
            if (!e.getValue().type().equals("dir")) {
                byIno.computeIfAbsent(e.getValue().ino(), k -> new TreeSet<>()).add(e.getKey());
            }
        }
        Set<Set<String>> out = new java.util.HashSet<>();
        for (Set<String> g : byIno.values()) {
            if (g.size() > 1) {
                out.add(g);
            }
        }
        return out;
    }

    /** Paths of big regular files, whose content {@link #sameContent} compares. */
    public List<String> bigFiles() {
        List<String> out = new ArrayList<>();
        entries.forEach((k, v) -> {
            if (v.type().equals("file") && v.size() >= HASH_LIMIT) {
                out.add(k);
            }
        });
        return out;
    }

    /** Whether two files hold the same bytes, read side by side in 1 MiB blocks. */
    public static boolean sameContent(Path a, Path b) throws IOException {
        try (InputStream x = Files.newInputStream(a); InputStream y = Files.newInputStream(b)) {
            byte[] bx = new byte[1 << 20];
            byte[] by = new byte[1 << 20];
            while (true) {
                int nx = x.readNBytes(bx, 0, bx.length);
                int ny = y.readNBytes(by, 0, by.length);
                if (nx != ny || java.util.Arrays.mismatch(bx, 0, nx, by, 0, ny) >= 0) {
                    return false;
                }
                if (nx < bx.length) {
                    return true;
                }
            }
        }
    }
}
