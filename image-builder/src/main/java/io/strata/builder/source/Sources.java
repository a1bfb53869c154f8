package io.strata.builder.source;

import io.strata.builder.BuildException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/** Picks the source for a path: an OCI image layout, a directory, or a tar file. */
public final class Sources {
    private Sources() {
    }

    /** The source at {@code path}; a directory source leaves out {@code output} if it lies inside. */
    public static ImageSource open(Path path, Path output) throws BuildException {
        if (Files.isDirectory(path)) {
            return OciLayoutSource.isLayout(path) ? new OciLayoutSource(path) : new DirectorySource(path, output);
        }
        if (Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS) || Files.isRegularFile(path)) {
            return new TarSource(path);
        }
        OciLayoutSource tagged = OciLayoutSource.tagged(path);
        if (tagged != null) {
            return tagged;
        }
        throw new BuildException(path + ": no such directory, tar file or OCI image layout");
    }
}
