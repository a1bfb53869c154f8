package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.HostTools;
import io.strata.registry.ImageReference;
import io.strata.registry.MediaTypes;
import io.strata.registry.RegistryClient;
import io.strata.registry.RegistryOptions;
import io.strata.registry.testing.OciLayouts;
import io.strata.registry.testing.RegistryFixture;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Images by reference, end to end through bin/strata and a real registry (Debian's docker-registry):
 * {@code strata build} of a generated tree, {@code strata push}, then
 * {@code strata serve nbd REF} with an empty cache: nbdcopy's copy equals {@code strata export} of the
 * local image byte for byte, and the kernel's EROFS mounts it with every file's md5 right; a partial
 * read shows as range requests in the registry's access log, far below the image's size; a warm
 * cache serves everything with the registry stopped; faults injected by {@link FaultProxy} are
 * retried or fail that read alone, never give a wrong byte; bad references fail in one line.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(value = 240, unit = TimeUnit.SECONDS)
class RemoteImageIT {
    @TempDir
    static Path shared;

    RegistryFixture registry;
    Path source;
    Path image;
    Path localExport;
    String ref;
    long blobBytes;

    @BeforeAll
    void buildPushAndExport() throws Exception {
        RegistryFixture.requireTools();
        HostTools.requireTool("nbdcopy", "libnbd-bin");
        BuiltImage built = BuiltImage.buildAndExport(shared);
        source = built.source();
        image = built.image();
        localExport = built.localExport();
        blobBytes = built.blobBytes();
        registry = RegistryFixture.anonymous(shared.resolve("registry"));
        ref = registry.reference("strata/e2e:v1");
        StrataProcess.Run p = StrataProcess.run(shared, "push", image.toString(), ref);
        assertEquals(0, p.code(), p.err());
    }

    @AfterAll
    void stopRegistry() {
        if (registry != null) {
            registry.close();
        }
    }

    private static long count(String text, String regex) {
        return java.util.regex.Pattern.compile(regex).matcher(text).results().count();
    }

    private static HostTools.Outcome nbdcopy(Path tmp, String name, Path out) throws IOException {
        Files.deleteIfExists(out);
        try {
            return HostTools.execute(List.of("nbdcopy", StrataProcess.nbdUri(tmp, name), out.toString()));
        } catch (IOException e) {
            throw new IOException(e.getMessage() + "; server log:\n" + Files.readString(tmp.resolve(name + ".err")), e);
        }
    }

    private void assertSameAsLocalExport(Path copy) throws IOException {
        assertEquals(-1, Files.mismatch(localExport, copy), "the device served from the registry equals the local export");
    }

    @Test
    void coldServeEqualsTheLocalExportMountsWithEveryMd5AndAWarmCacheNeedsNoRegistry(@TempDir Path tmp) throws Exception {
        Path cache = tmp.resolve("cache");
        Path copy = tmp.resolve("copy.raw");
        try (StrataProcess.Server s = StrataProcess.serveReference(tmp, "cold", ref, cache)) {
            HostTools.Outcome o = nbdcopy(tmp, "cold", copy);
            assertEquals(0, o.exitCode(), o.output());
            assertSameAsLocalExport(copy);
            // The metrics line carries the registry's fields once something was fetched.
            String log = s.awaitLog("registry=" + registry.registry() + " requests=");
            assertTrue(log.contains("disk cache hits="), log);
        }
        HostTools.requireRootWithErofsAndLoop();
        try (HostTools.ErofsMount m = new HostTools.ErofsMount(copy, tmp.resolve("mnt"))) {
            Map<String, String> want = md5s(source);
            assertEquals(300, want.size());
            assertEquals(want, md5s(m.path()));
        }
        registry.stop();
        try {
            Path warm = tmp.resolve("warm.raw");
            try (StrataProcess.Server s = StrataProcess.serveReference(tmp, "warm", ref, cache, "--registry-deadline", "5")) {
                assertTrue(s.log().contains("registry unreachable"), s.log());
                HostTools.Outcome o = nbdcopy(tmp, "warm", warm);
                assertEquals(0, o.exitCode(), o.output() + s.log());
            }
            assertSameAsLocalExport(warm);
        } finally {
            registry.restart();
        }
    }

    @Test
    void prefetchAllFillsTheCacheSoTheDeviceSurvivesLosingTheRegistry(@TempDir Path tmp) throws Exception {
        Path copy = tmp.resolve("copy.raw");
        try (StrataProcess.Server s = StrataProcess.serveReference(tmp, "prefetch", ref, tmp.resolve("cache"), "--prefetch", "all")) {
            s.awaitLog("prefetch=all:done 100%");
            registry.stop();
            try {
                HostTools.Outcome o = nbdcopy(tmp, "prefetch", copy);
                assertEquals(0, o.exitCode(), o.output() + s.log());
            } finally {
                registry.restart();
            }
        }
        assertSameAsLocalExport(copy);
    }

    /**
     * vhost-user takes a reference too (a guest reading it is the QEMU suite's job): it resolves and
     * serves the RAFS image, and its metrics line (the code attach shares) carries the registry's
     * fields, the disk cache's and the prefetch progress.
     */
    @Test
    void serveVhostUserTakesAReferenceAndLogsTheRegistryMetrics(@TempDir Path tmp) throws Exception {
        try (StrataProcess.Server s = StrataProcess.start(tmp, "vhost", "serve", "vhost-user", ref, "--socket",
                tmp.resolve("vhost.sock").toString(), "--cache-dir", tmp.resolve("cache").toString(), "--prefetch", "all",
                "--metrics-interval", "1")) {
            String log = s.awaitLog("vhost-user: serving");
            assertTrue(log.contains("vhost-user: serving RAFS image " + tmp.resolve("cache").resolve("bootstraps")), log);
            assertTrue(Files.exists(tmp.resolve("vhost.sock")));
            // The prefetch fills the disk cache from the registry with no guest attached; the line says so.
            java.util.regex.Pattern line = java.util.regex.Pattern.compile("metrics: cache .*; registry=" + registry.registry()
                    + " requests=[1-9]\\d* bytes=[1-9]\\d* retries=\\d+ errors=\\d+ p50=\\S+ p99=\\S+; disk cache hits=\\d+ misses=\\d+"
                    + " discarded=\\d+; prefetch=all:done 100%");
            s.awaitLog(line, 30);
        }
    }

    @Test
    void aPartialReadFetchesRangesFarBelowTheImageSize(@TempDir Path tmp) throws Exception {
        HostTools.requireTool("qemu-io", "qemu-utils");
        int before = registry.accessLog().size();
        try (StrataProcess.Server s = StrataProcess.serveReference(tmp, "partial", ref, tmp.resolve("cache"), "--prefetch", "none")) {
            // The first MiB: the superblock, the inodes and directories, and the first data blocks.
            HostTools.run(List.of("qemu-io", "-r", "-f", "raw", StrataProcess.nbdUri(tmp, "partial"), "-c", "read -q 0 1M"));
        }
        List<RegistryFixture.AccessLogEntry> log = registry.accessLog();
        List<RegistryFixture.AccessLogEntry> reads = log.subList(before, log.size()).stream()
                .filter(RegistryFixture.AccessLogEntry::isRangeRead).toList();
        long fetched = reads.stream().mapToLong(RegistryFixture.AccessLogEntry::bytes).sum();
        assertFalse(reads.isEmpty(), "range requests in the access log: " + log.subList(before, log.size()));
        assertTrue(fetched > 0 && fetched < blobBytes / 3, "fetched " + fetched + " of " + blobBytes + " blob bytes");
    }

    /**
     * A cache that cannot record the resolution (a full or read-only disk; here refs/ is a file, so its
     * directory cannot be made): the start goes on, with a warning. It failed every start before, even
     * with the bootstrap and blobs cached.
     */
    @Test
    void aCacheThatCannotRecordTheResolutionStillServes(@TempDir Path tmp) throws Exception {
        Path cache = Files.createDirectories(tmp.resolve("cache"));
        Files.writeString(cache.resolve("refs"), "not a directory");
        Path copy = tmp.resolve("copy.raw");
        try (StrataProcess.Server s = StrataProcess.serveReference(tmp, "norefs", ref, cache, "--prefetch", "none")) {
            HostTools.Outcome o = nbdcopy(tmp, "norefs", copy);
            assertEquals(0, o.exitCode(), o.output());
            assertTrue(s.log().contains("cannot record the resolved image"), s.log());
        }
        assertSameAsLocalExport(copy);
    }

    /** Faults the client retries: the whole device still arrives, byte for byte. */
    @ParameterizedTest
    @EnumSource(value = FaultProxy.Fault.class, names = {"STATUS_503", "STATUS_500", "TOO_MANY_429", "RESET_MID_BODY", "SHORT_BODY", "STALL"})
    void retriedFaultsStillServeEveryByte(FaultProxy.Fault fault, @TempDir Path tmp) throws Exception {
        try (FaultProxy proxy = new FaultProxy(registry.baseUri())) {
            proxy.inject(fault, fault == FaultProxy.Fault.STALL ? 1 : 3);
            String viaProxy = proxy.registry() + "/strata/e2e:v1";
            Path copy = tmp.resolve("copy.raw");
            try (StrataProcess.Server s = StrataProcess.serveReference(tmp, "faulty", viaProxy, tmp.resolve("cache"),
                    "--registry-try-timeout", "2", "--registry-deadline", "30", "--prefetch", "none")) {
                HostTools.Outcome o = nbdcopy(tmp, "faulty", copy);
                assertEquals(0, o.exitCode(), o.output() + s.log());
                assertSameAsLocalExport(copy);
                assertEquals(0, proxy.pending(), "every fault was hit");
                // The metrics line (every second) counts the retries.
                java.util.regex.Pattern retried = java.util.regex.Pattern.compile("registry=" + proxy.registry() + " requests=\\d+ bytes=\\d+ retries=[1-9]");
                s.awaitLog(retried, 10);
            }
        }
    }

    /**
     * Wrong bytes: nothing wrong is served or cached. One bad answer costs a second request (the read
     * that finds the chunk bad drops it and fetches it once more) and the read succeeds; a registry
     * that sends the chunk wrong twice fails that read (EIO), and the next read is right.
     */
    @Test
    void wrongBytesFailThatReadAloneAndAreFetchedAgain(@TempDir Path tmp) throws Exception {
        String viaProxy;
        try (FaultProxy proxy = new FaultProxy(registry.baseUri())) {
            proxy.inject(FaultProxy.Fault.FLIP_FIRST_BYTE, 1);
            viaProxy = proxy.registry() + "/strata/e2e:v1";
            Path once = tmp.resolve("once.raw");
            try (StrataProcess.Server s = StrataProcess.serveReference(tmp, "flip1", viaProxy, tmp.resolve("cache1"), "--prefetch", "none")) {
                HostTools.Outcome o = nbdcopy(tmp, "flip1", once);
                assertEquals(1, proxy.faultsApplied());
                assertEquals(0, o.exitCode(), "one bad answer is fetched again within the read: " + o.output() + s.log());
                assertSameAsLocalExport(once);
                assertTrue(s.log().contains("corrupt chunk"), s.log());
            }
        }
        try (FaultProxy proxy = new FaultProxy(registry.baseUri())) {
            proxy.inject(FaultProxy.Fault.FLIP_FIRST_BYTE, 100_000); // every answer wrong, the second try's too
            viaProxy = proxy.registry() + "/strata/e2e:v1";
            Path first = tmp.resolve("first.raw");
            try (StrataProcess.Server s = StrataProcess.serveReference(tmp, "flip2", viaProxy, tmp.resolve("cache2"), "--prefetch", "none")) {
                HostTools.Outcome o = nbdcopy(tmp, "flip2", first);
                assertNotEquals(0, o.exitCode(), "a read of a chunk sent wrong twice fails: " + o.output());
                // nbdcopy exits at its first error, while the server still answers the requests it had
                // read (their loads fetch through the proxy, wrong again): a read of the next copy that
                // joined one of those loads would share its failure. Each connection's end comes after.
                StrataProcess.awaitText(s.err, log -> count(log, "nbd #\\d+ \\S+: closed: ") == count(log, "nbd #\\d+ \\S+: export '"),
                        "every connection closed", s.process, 60);
                proxy.clearFaults();
                // The server keeps serving: the same device copied again is right (the bad chunk was dropped and refetched).
                Path second = tmp.resolve("second.raw");
                HostTools.Outcome again = nbdcopy(tmp, "flip2", second);
                assertEquals(0, again.exitCode(), again.output() + s.log());
                assertSameAsLocalExport(second);
            }
        }
    }

    @Test
    void badReferencesAndManifestsFailInOneLine(@TempDir Path tmp) throws Exception {
        // Syntax: exit 2.
        StrataProcess.Run syntax = StrataProcess.run(tmp, "inspect", "docker://" + registry.registry() + "/UPPER/case:v1");
        assertEquals(2, syntax.code(), syntax.err());
        assertTrue(syntax.err().contains("bad image reference"), syntax.err());
        StrataProcess.Run badMode = StrataProcess.run(tmp, "serve", "nbd", ref, "--socket", tmp.resolve("x.sock").toString(),
                "--prefetch", "some", "--cache-dir", tmp.resolve("cache").toString());
        assertEquals(2, badMode.code(), badMode.err());
        assertEquals(1, badMode.err().strip().lines().count(), badMode.err());
        // A server given a reference that does not resolve stops before listening, in one line.
        StrataProcess.Run serveUnknown = StrataProcess.run(tmp, "serve", "nbd", registry.reference("strata/e2e:nope"),
                "--socket", tmp.resolve("x.sock").toString(), "--cache-dir", tmp.resolve("cache").toString());
        assertEquals(1, serveUnknown.code(), serveUnknown.err());
        assertTrue(serveUnknown.err().strip().lines().count() == 1 && serveUnknown.err().contains("no such image"), serveUnknown.err());
        assertFalse(Files.exists(tmp.resolve("x.sock")));
        OciLayouts.pushWithSkopeo(tmp.resolve("plain"), registry, "plain/image:v1", List.of(new OciLayouts.Layer(
                MediaTypes.OCI_LAYER_TAR_GZIP, OciLayouts.gzipTarWithFile("hello.txt", new byte[] {1}), Map.of())));
        OciLayouts.pushWithSkopeo(tmp.resolve("notgz"), registry, "bad/boot:v1", List.of(new OciLayouts.Layer(
                MediaTypes.OCI_LAYER_TAR_GZIP, "not a gzip tar".getBytes(StandardCharsets.UTF_8),
                Map.of(MediaTypes.ANNOTATION_NYDUS_BOOTSTRAP, "true", MediaTypes.ANNOTATION_NYDUS_FS_VERSION, "6"))));
        // A copy of the image whose bootstrap layer is damaged in the registry's storage.
        // (Built with another time, so its bootstrap is a blob of its own: damaging it leaves the shared image alone.)
        Path damaged = tmp.resolve("damaged-img");
        StrataProcess.Run b = StrataProcess.run(tmp, "build", source.toString(), "-o", damaged.toString(), "--source-date-epoch", "1600000000");
        assertEquals(0, b.code(), b.err());
        try (RegistryClient client = new RegistryClient(RegistryOptions.defaults())) {
            StrataProcess.Run p = StrataProcess.run(tmp, "push", damaged.toString(), registry.reference("damaged/image:v1"));
            assertEquals(0, p.code(), p.err());
            String hex = client.resolve(ImageReference.parse(registry.reference("damaged/image:v1"))).bootstrap().blobId();
            Path data = registry.storageDir().resolve("docker/registry/v2/blobs/sha256/" + hex.substring(0, 2) + "/" + hex + "/data");
            byte[] bytes = Files.readAllBytes(data);
            bytes[bytes.length / 2] ^= 0x55;
            Files.write(data, bytes);
        }
        Map<String, String> cases = new TreeMap<>(Map.of(
                "no-such-host.invalid:5000/x/y:z", "no-such-host.invalid",
                registry.reference("strata/e2e:nope"), "no such image",
                registry.reference("plain/image:v1"), "is not a Nydus image",
                registry.reference("bad/boot:v1"), "is not a gzip tar",
                registry.reference("damaged/image:v1"), "does not match its digest"));
        for (Map.Entry<String, String> c : cases.entrySet()) {
            for (String command : List.of("inspect", "export")) {
                List<String> args = new java.util.ArrayList<>(List.of(command, c.getKey(), "--cache-dir", tmp.resolve("cache").toString(),
                        "--registry-retries", "2", "--registry-deadline", "10"));
                if (command.equals("export")) {
                    args.addAll(List.of("-o", tmp.resolve("out.raw").toString()));
                }
                StrataProcess.Run r = StrataProcess.run(tmp, args.toArray(String[]::new));
                assertEquals(1, r.code(), command + " " + c.getKey() + ": " + r.err());
                assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
                assertTrue(r.err().contains(c.getValue()), c.getKey() + ": " + r.err());
                assertFalse(Files.exists(tmp.resolve("out.raw")));
            }
        }
    }

    private static Map<String, String> md5s(Path root) throws Exception {
        Map<String, String> sums = new TreeMap<>();
        try (Stream<Path> files = Files.walk(root)) {
            for (Path p : (Iterable<Path>) files.filter(Files::isRegularFile)::iterator) {
                byte[] md5 = MessageDigest.getInstance("MD5").digest(Files.readAllBytes(p));
                sums.put(root.relativize(p).toString(), HexFormat.of().formatHex(md5));
            }
        }
        return sums;
    }

    /**
     * The daemon serves one reference as two exports through one registry client and one disk
     * cache: both copies equal the local export, and the second export's reads are all disk-cache
     * hits (the first export's fetches filled the blob they share). Its metrics line carries the
     * registry's counters, as {@code serve nbd}'s does.
     */
    @Test
    void theDaemonSharesOneRegistryClientAndDiskCacheBetweenExports(@TempDir Path tmp) throws Exception {
        HostTools.requireTool("curl", "curl");
        Path control = tmp.resolve("c.sock");
        Path nbd = tmp.resolve("d.sock");
        try (StrataProcess.Server daemon = StrataProcess.start(tmp, "daemon", "serve", "--control", control.toString(), "--socket",
                nbd.toString(), "--cache-dir", tmp.resolve("cache").toString(), "--prefetch", "none", "--metrics-interval", "1",
                "--metrics-listen", "127.0.0.1:0")) {
            daemon.awaitLog("control: listening on");
            String log = daemon.awaitLog("Prometheus endpoint on");
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("Prometheus endpoint on (http://127\\.0\\.0\\.1:\\d+/metrics)").matcher(log);
            assertTrue(m.find(), log);
            for (String name : List.of("one", "two")) {
                String out = HostTools.run(List.of("curl", "-sS", "--max-time", "120", "--unix-socket", control.toString(), "-w", "\n%{http_code}",
                        "-X", "POST", "--data-binary", "{\"kind\":\"nbd\",\"name\":\"" + name + "\",\"source\":\"" + ref + "\"}",
                        "http://strata/api/v1/exports"));
                assertTrue(out.endsWith("\n201"), out);
                Path copy = tmp.resolve(name + ".raw");
                HostTools.run(List.of("nbdcopy", "nbd+unix:///" + name + "?socket=" + nbd, copy.toString()));
                assertSameAsLocalExport(copy);
            }
            String scrape = HostTools.run(List.of("curl", "-sSf", "--max-time", "30", m.group(1)));
            assertEquals(1, scrape.lines().filter(l -> l.startsWith("strata_registry_requests_total{")).count(),
                    "one registry client, one registry: " + scrape);
            assertTrue(value(scrape, "strata_disk_cache_misses_total{export=\"one\"}") > 0, scrape);
            assertEquals(0, value(scrape, "strata_disk_cache_misses_total{export=\"two\"}"),
                    "the second export read the chunks the first one's reads put in the shared disk cache: " + scrape);
            // The daemon's metrics line (every second) names the registry and its counts.
            daemon.awaitLog(java.util.regex.Pattern.compile("metrics: exports=2; .*; cache .*; registry="
                    + java.util.regex.Pattern.quote(registry.registry()) + " requests=[1-9]\\d* bytes=[1-9]\\d* retries=\\d+ errors=\\d+"), 30);
        }
    }

    private static double value(String scrape, String series) {
        return scrape.lines().filter(l -> l.startsWith(series + " ")).mapToDouble(l -> Double.parseDouble(l.substring(series.length() + 1).strip()))
                .findFirst().orElseThrow(() -> new AssertionError("no " + series + " in:\n" + scrape));
    }
}
