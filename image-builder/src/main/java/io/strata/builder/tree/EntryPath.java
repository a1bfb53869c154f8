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
            Name n = Name.of(part);
            if (n.length() > ErofsDirent.MAX_NAME_LEN) {
                throw new EntryException(path, "has a " + n.length() + "-byte name; EROFS allows at most "
                        + ErofsDirent.MAX_NAME_LEN);
            }
            out.add(n);
        }
        return new EntryPath(path, List.copyOf(out));
    }

    public EntryPath child(Name name) throws EntryException {
        if (name.length() > ErofsDirent.MAX_NAME_LEN) {
            throw new EntryException(this + "/" + name, "has a " + name.length() + "-byte name; EROFS allows at most "
                    + ErofsDirent.MAX_NAME_LEN);
        }
        List<Name> c = new ArrayList<>(components);
        c.add(name);
        return new EntryPath(original.endsWith("/") ? original + name : original + "/" + name, List.copyOf(c));
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
