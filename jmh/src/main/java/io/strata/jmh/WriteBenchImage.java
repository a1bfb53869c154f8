package io.strata.jmh;

import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Writes a synthetic RAFS image for the benchmark scripts: {@code DIR/bootstrap} and
 * {@code DIR/blobs/<id>}, one blob of 1 MiB chunks of text-like data (sha256 digests).
 * Usage: {@code java -cp jmh/target/benchmarks.jar io.strata.jmh.WriteBenchImage DIR lz4|zstd|none SIZE_MIB}
 */
public final class WriteBenchImage {
    private WriteBenchImage() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: WriteBenchImage DIR lz4|zstd|none SIZE_MIB");
            System.exit(2);
        }
        Path dir = Files.createDirectories(Paths.get(args[0]));
        Compression c;
        switch (args[1].toLowerCase(Locale.ROOT)) {
            case "lz4": c = Compression.LZ4_BLOCK; break;
            case "zstd": c = Compression.ZSTD; break;
            case "none": c = Compression.NONE; break;
            default: throw new IllegalArgumentException("codec must be lz4, zstd or none: " + args[1]);
        }
        int chunks = Integer.parseInt(args[2]);
        SyntheticImage.Written w = SyntheticImage.write(dir, List.of(
                SyntheticImage.uniformBlob(new Random(BenchImage.SEED), chunks, BenchImage.CHUNK, c, DigestAlgorithm.SHA256)));
        System.out.println(w.bootstrap() + " " + w.blobIds().get(0));
    }
}
