package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.strata.core.testing.SampleTrees;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * The image the registry tests push: a generated tree built by {@code strata build} (reproducibly),
 * its local {@code strata export} (what a remote read must equal) and its blobs' total size.
 */
record BuiltImage(Path source, Path image, Path localExport, long blobBytes) {
    static BuiltImage buildAndExport(Path dir) throws Exception {
        Path source = SampleTrees.mixed(dir.resolve("src"), 300, 17, 5, 9);
        Path image = dir.resolve("img");
        StrataProcess.Run b = StrataProcess.run(dir, "build", source.toString(), "-o", image.toString(), "--source-date-epoch", "1700000000");
        assertEquals(0, b.code(), b.err());
        Path localExport = dir.resolve("local.raw");
        StrataProcess.Run e = StrataProcess.run(dir, "export", image.resolve("bootstrap").toString(), "-o", localExport.toString());
        assertEquals(0, e.code(), e.err());
        long blobBytes = 0;
        try (Stream<Path> blobs = Files.list(image.resolve("blobs"))) {
            for (Path p : (Iterable<Path>) blobs::iterator) {
                blobBytes += Files.size(p);
            }
        }
        return new BuiltImage(source, image, localExport, blobBytes);
    }
}
