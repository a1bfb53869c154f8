package io.strata.registry.prefetch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.image.RafsImage;
import io.strata.registry.ImagePusher;
import io.strata.registry.ImageReference;
import io.strata.registry.RegistryClient;
import io.strata.registry.RegistryOptions;
import io.strata.registry.cache.BlobCacheDirectory;
import io.strata.registry.cache.RemoteBlobSource;
import io.strata.registry.testing.RegistryFixture;
import io.strata.registry.testing.TestDevices;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --prefetch all} against the real registry (Debian's docker-registry): the image pushed by
 * Strata is filled into the cache by range requests, and then serves every byte with the registry
 * stopped.
 */
@Timeout(180)
class RegistryPrefetchTest {
    @TempDir
    Path tmp;

    @Test
    void allFillsTheCacheFromTheRegistryAndSurvivesItsLoss() throws Exception {
        RegistryFixture.requireTools();
        Path img = PrefetcherTest.buildImage(tmp, List.of("app"));
        byte[] expected = PrefetcherTest.localDevice(img);
        try (RegistryFixture registry = RegistryFixture.anonymous(tmp.resolve("registry"));
             RegistryClient client = new RegistryClient(RegistryOptions.defaults())) {
            ImageReference ref = ImageReference.parse(registry.reference("strata/prefetch:v1"));
            new ImagePusher(client, s -> { }).push(img, ref, Optional.empty());
            RemoteBlobSource source = new RemoteBlobSource(new BlobCacheDirectory(tmp.resolve("cache"), BlobCacheDirectory.UNBOUNDED),
                    id -> client.blob(ref, "sha256:" + id), registry.registry() + "/strata/prefetch");
            RafsImage image = RafsImage.open(img.resolve("bootstrap"));
            try (FlatDevice dev = FlatDevice.open(img.resolve("bootstrap"), source, FlatDeviceOptions.defaults());
                 Prefetcher p = Prefetcher.start(image, source, PrefetchMode.ALL, PrefetchOptions.defaults())) {
                assertTrue(p.awaitFinished(Duration.ofSeconds(120)), p.progress().toString());
                assertEquals(PrefetchProgress.State.DONE, p.progress().state(), p.progress().toString());
                long ranges = registry.accessLog().stream().filter(RegistryFixture.AccessLogEntry::isRangeRead).count();
                assertTrue(ranges >= p.progress().requests() && ranges >= 1, "range requests in the registry's log: " + ranges);
                registry.stop();
                assertFalse(registry.isRunning());
                assertArrayEquals(expected, TestDevices.readAll(dev, 128 << 10), "every byte from the cache, the registry stopped");
            }
        }
    }
}
