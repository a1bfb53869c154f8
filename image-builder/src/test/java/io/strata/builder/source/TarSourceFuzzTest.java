package io.strata.builder.source;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.strata.builder.testing.BuildFuzzing;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Tar layers (plain, gzip or zstd, recognised by their magic as {@code strata build} does) through
 * {@link TarLayerReader} and the whole build: an image the core reads back, or a BuildException
 * naming the tar. Seeds: {@code TarSourceFuzzTestInputs/fuzz/} (Nydus's tar fixtures with every
 * entry type, PAX xattrs, whiteouts, hard links, sparse files, gzip and zstd forms).
 */
class TarSourceFuzzTest {
    @FuzzTest
    void fuzz(byte[] tar) throws IOException {
        Path file = BuildFuzzing.fresh("tar").resolve("layer.tar");
        Files.write(file, tar);
        BuildFuzzing.buildAndCheck(file);
    }
}
