package io.strata.registry.cache;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import io.strata.registry.ImagePusher;
import io.strata.registry.ImageReference;
import io.strata.registry.RegistryClient;
import io.strata.registry.RegistryOptions;
import io.strata.registry.testing.RegistryFixture;
import io.strata.registry.testing.TestDevices;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cache in front of the real registry (Debian's docker-registry) and the real registry client:
 * a cold read of the whole device arrives as range requests, one per merged fetch, and a warm cache
 * serves every byte with the registry stopped.
 */
class RegistryBackedCacheTest {
    @TempDir
    Path tmp;

    @Test
    void coldReadsAreMergedRangeRequestsAndAWarmCacheNeedsNoRegistry() throws Exception {
        RegistryFixture.requireTools();
        SyntheticImage.Written w = SyntheticImage.write(tmp.resolve("image"), List.of(
                SyntheticImage.uniformBlob(new Random(50), 40, 65536, Compression.ZSTD, DigestAlgorithm.BLAKE3),
                SyntheticImage.uniformBlob(new Random(51), 24, 65536, Compression.NONE, DigestAlgorithm.SHA256)));
        try (RegistryFixture registry = RegistryFixture.anonymous(tmp.resolve("registry"))) {
            RegistryClient client = new RegistryClient(RegistryOptions.defaults());
            ImageReference ref = ImageReference.parse(registry.reference("strata/cache:v1"));
            new ImagePusher(client, line -> { }).push(tmp.resolve("image"), ref, Optional.empty());
            long rangesBefore = registry.accessLog().stream().filter(RegistryFixture.AccessLogEntry::isRangeRead).count();

            Path cache = tmp.resolve("cache");
            RemoteBlobSource.FetcherFactory fetchers = id -> client.blob(ref, "sha256:" + id);
            RemoteBlobSource cold = new RemoteBlobSource(new BlobCacheDirectory(cache, BlobCacheDirectory.UNBOUNDED), fetchers,
                    ref.registry() + "/" + ref.repository());
            try (FlatDevice dev = FlatDevice.open(w.bootstrap(), cold, FlatDeviceOptions.defaults())) {
                assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev));
            }
            List<RegistryFixture.AccessLogEntry> ranges = registry.accessLog().stream()
                    .filter(RegistryFixture.AccessLogEntry::isRangeRead).skip(rangesBefore).toList();
            // Plus one size probe per blob (the client asks for byte 0 when it learns a blob's size,
            // which the cache does once, when it makes the blob's map).
            assertEquals(cold.counters().fetchRequests() + 2, ranges.size(), "one range request per fetch: " + ranges);
            long blobBytes = Files.size(w.blobPath(0)) + Files.size(w.blobPath(1));
            assertEquals(blobBytes, cold.counters().bytesFetched(), "every chunk fetched once");
            // Merged: a stream's readahead window starts at 128 KiB and doubles (128, 256, 512 KiB,
            // then 1 MiB requests), so each blob costs up to three requests more than 1 MiB pieces.
            assertTrue(ranges.size() <= blobBytes / FetchPolicy.DEFAULT_MERGE_LIMIT + 4 + 2 * 3, "merged: " + ranges.size() + " requests");

            registry.stop();
            RemoteBlobSource warm = new RemoteBlobSource(new BlobCacheDirectory(cache, BlobCacheDirectory.UNBOUNDED), fetchers,
                    ref.registry() + "/" + ref.repository());
            try (FlatDevice dev = FlatDevice.open(w.bootstrap(), warm, FlatDeviceOptions.defaults())) {
                assertArrayEquals(w.expectedDevice(), TestDevices.readAll(dev));
            }
            assertEquals(0, warm.counters().fetchRequests());
        }
    }
}
