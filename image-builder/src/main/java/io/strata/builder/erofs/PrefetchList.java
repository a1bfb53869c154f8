package io.strata.builder.erofs;

import io.strata.builder.BuildListener;
import io.strata.builder.tree.EntryException;
import io.strata.builder.tree.EntryPath;
import io.strata.builder.tree.FileKind;
import io.strata.builder.tree.FsTree;
import io.strata.builder.tree.Node;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns {@code --prefetch LISTFILE} lines into the inodes of the RAFS prefetch table, the way
 * nydus-image does with its prefetch patterns ({@code builder/src/core/prefetch.rs}): one path per
 * line from the image root (Strata takes it with or without the leading '/'; nydus-image needs
 * it); a path the image does not have is left out (nydus-image too: the path might exist in another
 * layer), and so are a path covered by an earlier one (the same path, or one below a listed
 * directory) and an empty regular file (no data to fetch); Strata says so in a build warning for
 * each. A directory stands for everything below it: the reader expands it.
 */
final class PrefetchList {
    private PrefetchList() {
    }

    static List<Node> resolve(FsTree tree, List<String> lines, BuildListener listener) {
        List<Node> out = new ArrayList<>();
        List<List<?>> listed = new ArrayList<>();
        Map<Node, Boolean> taken = new IdentityHashMap<>();
        for (String line : lines) {
            String p = line.strip();
            if (p.isEmpty()) {
                continue;
            }
            EntryPath path;
            try {
                path = EntryPath.parse(p);
            } catch (EntryException e) {
                listener.warning("prefetch: '" + p + "' left out: " + e.getMessage());
                continue;
            }
            Node node = tree.lookup(path);
            if (node == null) {
                listener.warning("prefetch: '" + p + "' is not in the image; left out of the prefetch table");
                continue;
            }
            if (covered(listed, path.components()) || taken.containsKey(node)) {
                listener.warning("prefetch: '" + p + "' is covered by an earlier entry; left out");
                continue;
            }
            if (node.kind() == FileKind.REGULAR && node.content().size() == 0) {
                listener.warning("prefetch: '" + p + "' is an empty file (nothing to fetch); left out");
                continue;
            }
            listed.add(path.components());
            taken.put(node, Boolean.TRUE);
            out.add(node);
        }
        return out;
    }

    /** Whether {@code c} equals or lies below one of the paths already listed. */
    private static boolean covered(List<List<?>> listed, List<?> c) {
        for (List<?> l : listed) {
            if (l.size() <= c.size() && c.subList(0, l.size()).equals(l)) {
                return true;
            }
        }
        return false;
    }
}
