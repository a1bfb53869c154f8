package io.strata.builder.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

/** Compares a source tree with the mounted image, reporting every difference at once. */
public final class TreeAssert {
    /** What a comparison leaves out, where the two sides legitimately differ. */
    public record Ignore(boolean rootMetadata, boolean symlinkPermissions, boolean directoryMtimes) {
        public static final Ignore NOTHING = new Ignore(false, false, false);
    }

    private TreeAssert() {
    }

    public static void assertSameTree(TreeSnapshot expected, TreeSnapshot actual, Ignore ignore) throws IOException {
        List<String> diffs = new ArrayList<>();
        Set<String> paths = new TreeSet<>(expected.entries().keySet());
        paths.addAll(actual.entries().keySet());
        for (String p : paths) {
            TreeSnapshot.Entry e = expected.entries().get(p);
            TreeSnapshot.Entry a = actual.entries().get(p);
            if (e == null || a == null) {
                diffs.add(p + ": " + (e == null ? "only in the image" : "missing from the image"));
                continue;
            }
            compare(p, e, a, ignore, diffs);
        }
        Set<Set<String>> el = expected.linkGroups();
        Set<Set<String>> al = actual.linkGroups();
        if (!el.equals(al)) {
            diffs.add("hard-link groups differ: source " + el + ", image " + al);
        }
        if (!diffs.isEmpty()) {
            fail(diffs.size() + " difference(s) between " + expected.root() + " and " + actual.root() + ":\n  "
                    + String.join("\n  ", diffs.subList(0, Math.min(40, diffs.size()))));
        }
        for (String p : expected.bigFiles()) {
            assertTrue(TreeSnapshot.sameContent(expected.root().resolve(p.substring(1)), actual.root().resolve(p.substring(1))),
                    p + ": content differs");
        }
    }

    private static void compare(String p, TreeSnapshot.Entry e, TreeSnapshot.Entry a, Ignore ignore, List<String> diffs) {
        boolean root = p.equals("/");
        if (!e.type().equals(a.type())) {
            diffs.add(p + ": type " + e.type() + " became " + a.type());
            return;
        }
        if (root && ignore.rootMetadata()) {
            return;
        }
        int perm = 07777;
        if (e.type().equals("symlink") && ignore.symlinkPermissions()) {
            perm = 0;
        }
        check(diffs, p, "mode", Integer.toOctalString(e.mode() & perm), Integer.toOctalString(a.mode() & perm));
        check(diffs, p, "uid", e.uid(), a.uid());
        check(diffs, p, "gid", e.gid(), a.gid());
        check(diffs, p, "size", e.size(), a.size());
        if (!(e.type().equals("dir") && ignore.directoryMtimes())) {
            check(diffs, p, "mtime", e.mtime(), a.mtime());
        }
        check(diffs, p, "content", e.content(), a.content());
        check(diffs, p, "symlink target", e.linkTarget(), a.linkTarget());
        check(diffs, p, "rdev", Long.toHexString(e.rdev()), Long.toHexString(a.rdev()));
        check(diffs, p, "xattrs", e.xattrs(), a.xattrs());
    }

    private static void check(List<String> diffs, String p, String what, Object e, Object a) {
        if (!Objects.equals(e, a)) {
            diffs.add(p + ": " + what + " " + e + " became " + a);
        }
    }

    /** Asserts the value is what the map says, with the map's name in the message. */
    public static void assertXattr(Map<String, String> xattrs, String name, String hex) {
        assertEquals(hex, xattrs.get(name), name + " in " + xattrs);
    }
}
