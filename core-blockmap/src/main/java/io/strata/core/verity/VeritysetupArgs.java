package io.strata.core.verity;

import io.strata.core.export.DeviceExporter;
import java.nio.file.Path;
import java.util.List;

/** The {@code veritysetup verify} command line that checks a {@link VerityLayout#VERITYSETUP} export. */
public final class VeritysetupArgs {
    private VeritysetupArgs() {
    }

    public static List<String> verify(Path file, DeviceExporter.Result r) {
        return List.of("veritysetup", "verify", file.toString(), file.toString(), r.rootHash(),
                "--no-superblock", "--format=1", "--hash=sha256", "--salt=-",
                "--data-block-size=4096", "--hash-block-size=4096",
                "--data-blocks=" + r.dataBytes() / VerityTree.BLOCK_SIZE,
                "--hash-offset=" + r.dataBytes());
    }
}
