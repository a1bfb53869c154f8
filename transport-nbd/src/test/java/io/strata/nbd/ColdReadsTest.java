package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.HostTools;
import io.strata.core.testing.SyntheticImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A RAFS image read cold by nbdcopy with many requests in flight, through a cache far smaller than
 * the image, so that batches the cache can answer at once and batches that need chunk loads
 * alternate on one connection. A batch answered at once used to stay the connection's current
 * batch while also being free for reuse; the next batch needing a load was then handed to the
 * loader pool and read into again, its first requests were never answered and nbdcopy hung
 * (found by the legacy-kernel guest test's `strata attach`). Here it times out instead.
 */
@Timeout(120)
class ColdReadsTest {
    @TempDir
    Path tmp;

    @Test
    void coldCopyThroughASmallCacheIsByteIdentical() throws Exception {
        HostTools.requireTool("nbdcopy", "libnbd-bin");
        Random random = new Random(8);
        SyntheticImage.Written image = SyntheticImage.write(tmp, List.of(
                SyntheticImage.uniformBlob(random, 96, 64 << 10, Compression.ZSTD, DigestAlgorithm.BLAKE3),
                SyntheticImage.uniformBlob(random, 96, 64 << 10, Compression.LZ4_BLOCK, DigestAlgorithm.SHA256)));
        // 8 slots of 64 KiB for 12 MiB of chunks: nearly every read misses, some hit.
        FlatDevice device = FlatDevice.open(image.bootstrap(), new LocalBlobDirectory(image.blobDir()),
                FlatDeviceOptions.defaults().withCacheBytes(512 << 10));
        try (ServerFixture server = new ServerFixture(tmp, List.of(new Export("cold", device, "synthetic RAFS")))) { // closes the device
            for (int round = 0; round < 3; round++) {
                Path out = tmp.resolve("copy-" + round + ".raw");
                HostTools.run(List.of("timeout", "60", "nbdcopy", "--connections=1", "--requests=64",
                        "--request-size=16384", server.unixUri("cold"), out.toString()));
                assertArrayEquals(image.expectedDevice(), Files.readAllBytes(out), "round " + round);
            }
        }
    }
}
