package io.strata.builder.testing;

import java.io.IOException;
import java.nio.file.Path;

/** Hash helper shared by tests outside this package. */
public final class TreeSnapshotAccess {
    private TreeSnapshotAccess() {
    }

    public static String sha256(Path file) throws IOException {
        return TreeSnapshot.sha256(file);
    }
}
