package io.strata.core.testing;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/** Locates {@code ../shared/fixtures} (from STRATA_FIXTURES, or by walking up from the working directory). */
public final class Fixtures {
    public static final String NYDUS_BLOB_ID = "be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef";
    /** From the fixture README: Nydus's test_export expects 0x209 blocks ... */
    public static final long NYDUS_BLOCKS = 0x209;
    /** ... and this sha256 for the export with Nydus's verity tree appended. */
    public static final String NYDUS_VERITY_EXPORT_SHA256 = "5684c330c622350c12d633d0773201f862b9955375d806670e1aaf36ef038b31";

    private Fixtures() {
    }

    public static Path root() {
        String env = System.getenv("STRATA_FIXTURES");
        if (env != null && Files.isDirectory(Paths.get(env))) {
            return Paths.get(env);
        }
        Path p = Paths.get("").toAbsolutePath();
        while (p != null) {
            Path candidate = p.resolve("../shared/fixtures").normalize();
            if (Files.isDirectory(candidate)) {
                return candidate;
            }
            p = p.getParent();
        }
        throw new IllegalStateException("cannot find ../shared/fixtures; set STRATA_FIXTURES");
    }

    public static Path nydusDir() {
        return root().resolve("nydus-rafs-v6");
    }

    public static Path nydusBootstrap() {
        return nydusDir().resolve("rafs-v6-2.2.boot");
    }
}
