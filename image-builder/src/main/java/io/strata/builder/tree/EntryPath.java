package io.strata.builder.tree;

import io.strata.core.image.ErofsDirent;
import java.util.ArrayList;
import java.util.List;

/**
 * A path inside the image, as named by a tar entry or a walk: normalized to its components, with
 * "." dropped and ".." resolved. A path that climbs above the root, or has a component longer than
 * EROFS's 255-byte limit, is refused with the original text in the message.
 */
public final class EntryPath {
    private final String original;
    private final List<Name> components;

    private EntryPath(String original, List<Name> components) {
        this.original = original;
        this.components = components;
    }

    public static final EntryPath ROOT = new EntryPath("/", List.of());
    /**
     * The deepest path an image may hold: as deep as a path the kernel resolves in one call can be
     * (PATH_MAX, 4096 bytes, of one-letter names). The builder's tree walks recurse once per level;
     * a tar with a file 6,000 directories down overflowed the stack.
     */
    public static final int MAX_DEPTH = 2048;

    /** Parses a tar-style path: relative or absolute, "./" prefixes and trailing slashes allowed. */
    public static EntryPath parse(String path) throws EntryException {
        List<Name> out = new ArrayList<>();
        for (String part : path.split("/", -1)) {
            if (part.isEmpty() || part.equals(".")) {
                continue;
            }
            if (part.equals("..")) {
                if (out.isEmpty()) {
                    throw new EntryException(path, "climbs out of the image root ('..')");
                }
                out.remove(out.size() - 1);
                continue;
            }
            if (part.indexOf('\0') >= 0) {
                // A PAX path may carry one; the name would end there for every reader of the directory.
                throw new EntryException(path.replace('\0', '?'), "has a NUL byte in a name");
            }
            requireUtf8(path, part);
            Name n = Name.of(part);
            if (n.length() > ErofsDirent.MAX_NAME_LEN) {
                throw new EntryException(path, "has a " + n.length() + "-byte name; EROFS allows at most "
                        + ErofsDirent.MAX_NAME_LEN);
            }
            out.add(n);
            if (out.size() > MAX_DEPTH) {
                throw tooDeep(path);
            }
        }
        return new EntryPath(path, List.copyOf(out));
    }

    public EntryPath child(Name name) throws EntryException {
        String s = name.toString();
        if (s.isEmpty() || s.equals(".") || s.equals("..") || s.indexOf('/') >= 0 || s.indexOf('\0') >= 0) {
            // A whiteout ".wh." (or ".wh..") names nothing: a directory entry of that name would be
            // one the kernel refuses ("bogus dirent") or a second "." in the directory.
            throw new EntryException(this + "/" + s, "is not a name a directory entry can have");
        }
        requireUtf8(this + "/" + s, s);
        if (components.size() >= MAX_DEPTH) {
            throw tooDeep(this + "/" + s);
        }
        if (name.length() > ErofsDirent.MAX_NAME_LEN) {
            throw new EntryException(this + "/" + name, "has a " + name.length() + "-byte name; EROFS allows at most "
                    + ErofsDirent.MAX_NAME_LEN);
        }
        List<Name> c = new ArrayList<>(components);
        c.add(name);
        return new EntryPath(original.endsWith("/") ? original + name : original + "/" + name, List.copyOf(c));
    }

    /** A path past {@link #MAX_DEPTH}, named by its first 200 characters (it may be thousands long). */
    private static EntryException tooDeep(String path) {
        return new EntryException(path.length() > 200 ? path.substring(0, 200) + "..." : path,
                "lies more than " + MAX_DEPTH + " directories deep");
    }

    /**
     * Refuses text that was not valid UTF-8 where it came from (decoded, the bad bytes became U+FFFD):
     * the image keeps names and link targets as UTF-8, and changing them, or merging two names that
     * differ only there, would be a wrong image built without a word.
     */
    public static void requireUtf8(String path, String text) throws EntryException {
        if (text.indexOf('\uFFFD') >= 0) {
            throw new EntryException(path, "has a name or link target that is not valid UTF-8 (or holds U+FFFD), which this"
                    + " builder does not keep unchanged");
        }
    }

    /** A symlink's target as the bytes the image stores, refused unless valid UTF-8 (see {@link #requireUtf8}). */
    public static byte[] linkTarget(String path, String target) throws EntryException {
        requireUtf8(path, target);
        return target.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

    public boolean isRoot() {
        return components.isEmpty();
    }

    public List<Name> components() {
        return components;
    }

    public Name last() {
        return components.get(components.size() - 1);
    }

    public EntryPath parent() {
        if (components.isEmpty()) {
            return this;
        }
        List<Name> c = components.subList(0, components.size() - 1);
        StringBuilder sb = new StringBuilder();
        for (Name n : c) {
            sb.append('/').append(n);
        }
        return new EntryPath(sb.length() == 0 ? "/" : sb.toString(), List.copyOf(c));
    }

    /** The path as its source named it. */
    @Override
    public String toString() {
        return original;
    }
}
