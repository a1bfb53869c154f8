package io.strata.builder.erofs;

import io.strata.builder.BuildException;
import io.strata.builder.BuildListener;
import io.strata.core.image.ErofsXattrEntry;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Turns a file's xattrs into EROFS entries. Names outside the namespaces EROFS indexes (user.,
 * trusted., security., POSIX ACLs) are left out, as mkfs.erofs does; the build reports each such name
 * once, with a count and an example path, rather than once per file.
 */
final class XattrFilter {
    private record Skipped(String example, int[] count) {
    }

    private final Map<String, Skipped> skipped = new TreeMap<>();

    XattrArea areaFor(String path, Map<String, byte[]> xattrs) throws BuildException {
        if (xattrs.isEmpty()) {
            return XattrArea.NONE;
        }
        List<ErofsXattrEntry> out = new ArrayList<>(xattrs.size());
        for (Map.Entry<String, byte[]> x : xattrs.entrySet()) {
            ErofsXattrEntry e;
            try {
                e = ErofsXattrEntry.of(x.getKey(), x.getValue());
            } catch (IllegalArgumentException ex) {
                throw new BuildException("'" + path + "': " + ex.getMessage());
            }
            if (e == null) {
                skipped.computeIfAbsent(x.getKey(), k -> new Skipped(path, new int[1])).count()[0]++;
                continue;
            }
            out.add(e);
        }
        // Sorted by full name (the map's order), which is deterministic; the kernel scans linearly.
        XattrArea area = out.isEmpty() ? XattrArea.NONE : new XattrArea(out);
        if (area.entryBytes() > XattrArea.MAX_ENTRY_BYTES) {
            // i_xattr_icount is 16 bits: more would wrap, and the kernel would read past the area.
            throw new BuildException("'" + path + "': its xattrs take " + area.entryBytes() + " bytes; an EROFS inode holds at most "
                    + XattrArea.MAX_ENTRY_BYTES + " bytes of them");
        }
        return area;
    }

    void report(BuildListener listener) {
        for (Map.Entry<String, Skipped> s : skipped.entrySet()) {
            listener.warning("left out xattr '" + s.getKey() + "' of " + s.getValue().count()[0] + " file(s), e.g. '"
                    + s.getValue().example() + "': EROFS stores only user., trusted., security. and POSIX ACL xattrs");
        }
    }
}
