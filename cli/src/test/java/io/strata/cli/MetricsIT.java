package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --metrics-listen} on a live {@code strata serve nbd}: known traffic from real clients
 * (qemu-io's exact reads, nbdcopy's whole-device copy), then the scrape {@code curl} gets passes
 * {@code promtool check metrics} and its values are the traffic's: request and byte counts, the
 * latency histograms' counts, nothing in flight, the connections, a chunk cache whose misses are
 * its loads; each export its own series; the JVM's series beside them.
 */
class MetricsIT {
    @TempDir
    Path tmp;

    private static final Pattern ENDPOINT = MetricsScrape.ENDPOINT;

    @Test
    void aScrapeAfterKnownTrafficPassesPromtoolAndCountsIt() throws Exception {
        HostTools.requireTool("promtool", "prometheus");
        HostTools.requireTool("curl", "curl");
        HostTools.requireTool("qemu-io", "qemu-utils");
        HostTools.requireTool("nbdcopy", "libnbd-bin");
        byte[] raw = new byte[3 << 20];
        new Random(42).nextBytes(raw);
        Path rawImage = tmp.resolve("disk.img");
        Files.write(rawImage, raw);
        Path socket = tmp.resolve("nbd.sock");
        try (StrataProcess.Server s = StrataProcess.start(tmp, "serve", "serve", "nbd", Fixtures.nydusBootstrap().toString(),
                "-D", Fixtures.nydusDir().toString(), "--export", "disk=raw:" + rawImage, "--socket", socket.toString(),
                "--metrics-listen", "127.0.0.1:0", "--metrics-interval", "0")) {
            Matcher m = ENDPOINT.matcher(s.awaitLog(ENDPOINT, 60));
            assertTrue(m.find());
            String url = "http://127.0.0.1:" + m.group(1) + "/metrics";
            s.awaitLog("nbd: export 'disk'");

            // Exactly 20 reads of 4 KiB on the default export: 11 in the bootstrap (file regions), 9 in the
            // blob's blocks (512..520: chunks through the cache). qemu-io sends one NBD read per command.
            List<String> qemuIo = new ArrayList<>(List.of("timeout", "60", "qemu-io", "-r", "-f", "raw"));
            int reads = 20;
            for (int i = 0; i < reads; i++) {
                long block = i < 11 ? i : 512 + (i - 11);
                qemuIo.addAll(List.of("-c", "read " + block * 4096 + " 4096"));
            }
            qemuIo.add("nbd+unix:///?socket=" + socket);
            HostTools.run(qemuIo);
            // The whole raw export with nbdcopy: every byte read once, in requests of its choosing.
            Path copy = tmp.resolve("copy.img");
            HostTools.run(List.of("timeout", "60", "nbdcopy", "--connections=2", "nbd+unix:///disk?socket=" + socket, copy.toString()));
            assertArrayEquals(raw, Files.readAllBytes(copy));

            // Settled: the server has noticed every client's connection closed (a moment after the client exits).
            Map<String, Double> v = scrapeWhen(url, tmp.resolve("scrape.txt"),
                    x -> x.getOrDefault(nbd("strata_connections_open", "default", ""), -1.0) == 0
                            && x.getOrDefault(nbd("strata_connections_open", "disk", ""), -1.0) == 0
                            && x.getOrDefault("strata_nbd_server_connections_open", -1.0) == 0);
            HostTools.Outcome check = HostTools.execute(List.of("sh", "-c", "promtool check metrics < " + tmp.resolve("scrape.txt")));
            assertEquals(0, check.exitCode(), "promtool check metrics: " + check.output());
            assertEquals("", check.output().trim(), "promtool's findings");

            assertEquals(reads, v.get(nbd("strata_requests_total", "default", "read")));
            assertEquals(reads * 4096.0, v.get(nbd("strata_request_bytes_total", "default", "read")));
            assertEquals(reads, v.get(nbd("strata_request_duration_seconds_count", "default", "read")));
            assertEquals(reads, v.get("strata_request_duration_seconds_bucket{export=\"default\",transport=\"nbd\",type=\"read\",le=\"+Inf\"}"));
            assertTrue(v.get(nbd("strata_request_duration_seconds_sum", "default", "read")) > 0);
            assertEquals(0.0, sumOf(v, "strata_request_errors_total{export=\"default\""), "no errors");
            assertEquals(0.0, v.get(nbd("strata_requests_in_flight", "default", "")));
            assertEquals(1.0, v.get(nbd("strata_connections_total", "default", "")));

            // The fixture's blob holds two chunks: both loaded once (a load is a miss), and found again after.
            double misses = v.get("strata_chunk_cache_misses_total{export=\"default\"}");
            assertEquals(2.0, misses, "both chunks of the fixture's blob loaded");
            assertEquals(misses, v.get("strata_chunk_loads_total{export=\"default\"}"));
            assertTrue(v.get("strata_chunk_cache_hits_total{export=\"default\"}") >= 9 - misses, "later reads hit");
            assertEquals(0.0, v.get("strata_chunk_cache_evictions_total{export=\"default\"}"));
            assertTrue(v.get("strata_chunk_decompress_seconds_total{export=\"default\"}") > 0);
            assertTrue(v.get("strata_chunk_digest_seconds_total{export=\"default\"}") > 0);
            assertTrue(v.get("strata_chunk_cache_used_bytes{export=\"default\"}") <= v.get("strata_chunk_cache_capacity_bytes{export=\"default\"}"));

            // The raw export: its own series; every byte once; a latency observation per request.
            double diskReads = v.get(nbd("strata_requests_total", "disk", "read"));
            assertEquals((double) raw.length, v.get(nbd("strata_request_bytes_total", "disk", "read")));
            assertTrue(diskReads > 0, "nbdcopy's reads: " + diskReads);
            assertEquals(diskReads, v.get(nbd("strata_request_duration_seconds_count", "disk", "read")));
            assertEquals(2.0, v.get(nbd("strata_connections_total", "disk", "")));
            assertEquals(0.0, v.get(nbd("strata_requests_in_flight", "disk", "")));
            assertEquals(0.0, sumOf(v, "strata_request_errors_total{export=\"disk\""), "no errors");

            assertEquals(0.0, v.get("strata_nbd_server_connections_open"));
            assertEquals(0.0, v.get("strata_nbd_server_connections_refused_total"));
            assertEquals(1.0, sumOf(v, "strata_build_info{version="));
            assertTrue(v.containsKey("jvm_threads_current"), "the JVM's standard metrics");
            assertTrue(v.containsKey("process_open_fds"), "the process's metrics");
        }
    }

    @Test
    void anImageByReferenceReportsItsRegistryDiskCacheAndPrefetch() throws Exception {
        io.strata.registry.testing.RegistryFixture.requireTools();
        HostTools.requireTool("promtool", "prometheus");
        HostTools.requireTool("curl", "curl");
        HostTools.requireTool("nbdcopy", "libnbd-bin");
        BuiltImage built = BuiltImage.buildAndExport(tmp.resolve("built"));
        try (io.strata.registry.testing.RegistryFixture registry = io.strata.registry.testing.RegistryFixture.anonymous(tmp.resolve("registry"))) {
            String ref = registry.reference("strata/metrics:v1");
            StrataProcess.Run push = StrataProcess.run(tmp, "push", built.image().toString(), ref);
            assertEquals(0, push.code(), push.err());
            try (StrataProcess.Server s = StrataProcess.serveReference(tmp, "remote", ref, tmp.resolve("cache"),
                    "--metrics-listen", "127.0.0.1:0")) {
                Matcher m = ENDPOINT.matcher(s.awaitLog(ENDPOINT, 60));
                assertTrue(m.find());
                Path copy = tmp.resolve("copy.raw");
                HostTools.run(List.of("timeout", "60", "nbdcopy", StrataProcess.nbdUri(tmp, "remote"), copy.toString()));
                assertEquals(-1, Files.mismatch(built.localExport(), copy), "the device served from the registry");
                String reg = "{registry=\"" + registry.registry() + "\"}";
                // Settled: the prefetch has stopped fetching, so every registry request has its latency.
                Map<String, Double> v = scrapeWhen("http://127.0.0.1:" + m.group(1) + "/metrics", tmp.resolve("scrape.txt"),
                        x -> x.getOrDefault("strata_prefetch_state{export=\"default\",state=\"running\"}", 1.0) == 0
                                && x.getOrDefault(nbd("strata_connections_open", "default", ""), -1.0) == 0
                                && x.getOrDefault("strata_registry_requests_total" + reg, -1.0)
                                        .equals(x.get("strata_registry_request_duration_seconds_count" + reg)));
                HostTools.Outcome check = HostTools.execute(List.of("sh", "-c", "promtool check metrics < " + tmp.resolve("scrape.txt")));
                assertEquals(0, check.exitCode(), "promtool check metrics: " + check.output());
                assertEquals("", check.output().trim(), "promtool's findings");

                double requests = v.get("strata_registry_requests_total" + reg);
                assertTrue(requests >= 3, "manifest, bootstrap layer and chunks fetched: " + requests);
                assertEquals(requests, v.get("strata_registry_request_duration_seconds_bucket{registry=\"" + registry.registry()
                        + "\",le=\"+Inf\"}"));
                assertEquals(0.0, v.get("strata_registry_errors_total" + reg));
                double fetched = v.get("strata_disk_cache_fetched_bytes_total{export=\"default\"}");
                assertTrue(fetched > 0 && fetched <= built.blobBytes(), "fetched " + fetched + " of " + built.blobBytes());
                assertTrue(v.get("strata_registry_received_bytes_total" + reg) >= fetched, "every fetched byte came from the registry");
                assertTrue(v.get("strata_disk_cache_misses_total{export=\"default\"}") > 0);
                assertTrue(v.get("strata_disk_cache_fetch_requests_total{export=\"default\"}") > 0);
                assertEquals(1.0, sumOf(v, "strata_prefetch_state{export=\"default\""), "one state at a time");
                assertTrue(v.get("strata_prefetch_done_bytes{export=\"default\"}") <= v.get("strata_prefetch_planned_bytes{export=\"default\"}"));
                assertEquals(v.get("strata_chunk_cache_misses_total{export=\"default\"}"), v.get("strata_chunk_loads_total{export=\"default\"}"));
                double reads = v.get(nbd("strata_requests_total", "default", "read"));
                assertTrue(reads > 0);
                assertEquals(reads, v.get(nbd("strata_request_duration_seconds_count", "default", "read")));
                assertEquals(0.0, sumOf(v, "strata_request_errors_total{export=\"default\""), "no errors");
            }
        }
    }

    /**
     * Connections that send half a request and stop (a slowloris) held every thread of the endpoint's
     * pool, and scrapes timed out for as long as they stayed. They are now closed after 5 s.
     */
    @Test
    void halfSentRequestsDoNotStopScrapes() throws Exception {
        HostTools.requireTool("curl", "curl");
        try (StrataProcess.Server s = StrataProcess.start(tmp, "serve", "serve", "nbd", Fixtures.nydusBootstrap().toString(),
                "-D", Fixtures.nydusDir().toString(), "--socket", tmp.resolve("nbd.sock").toString(),
                "--metrics-listen", "127.0.0.1:0", "--metrics-interval", "0")) {
            Matcher m = ENDPOINT.matcher(s.awaitLog(ENDPOINT, 60));
            assertTrue(m.find());
            int port = Integer.parseInt(m.group(1));
            List<java.net.Socket> stalled = new ArrayList<>();
            try {
                for (int i = 0; i < 12; i++) {
                    java.net.Socket c = new java.net.Socket("127.0.0.1", port);
                    c.getOutputStream().write("GET /metrics HTTP/1.1\r\nHost: x\r\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                    c.getOutputStream().flush();
                    stalled.add(c);
                }
                // Within the 5-s request limit and its 1-s timer, plus margin: a scrape answers again.
                // (Before, the server's idle timeout freed them only after about a minute.)
                String scrape = HostTools.run(List.of("curl", "-sSf", "--max-time", "15", "http://127.0.0.1:" + port + "/metrics"));
                assertTrue(scrape.contains("strata_build_info"), scrape);
            } finally {
                for (java.net.Socket c : stalled) {
                    c.close();
                }
            }
        }
    }

    @Test
    void aBadMetricsAddressIsABadArgument() throws Exception {
        for (String bad : List.of("127.0.0.1", "127.0.0.1:99999", "::1:9100")) {
            StrataProcess.Run r = StrataProcess.run(tmp, "serve", "nbd", Fixtures.nydusBootstrap().toString(), "-D",
                    Fixtures.nydusDir().toString(), "--socket", tmp.resolve("s.sock").toString(), "--metrics-listen", bad);
            assertEquals(2, r.code(), bad + ": " + r.err());
            assertTrue(r.err().contains("--metrics-listen"), r.err());
            assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
        }
    }

    /** The sample key of an export's NBD series, with a {@code type} label unless it is empty. */
    private static String nbd(String name, String export, String type) {
        return name + "{export=\"" + export + "\",transport=\"nbd\"" + (type.isEmpty() ? "" : ",type=\"" + type + "\"") + "}";
    }

    private static double sumOf(Map<String, Double> v, String prefix) {
        return v.entrySet().stream().filter(e -> e.getKey().startsWith(prefix)).mapToDouble(Map.Entry::getValue).sum();
    }

    private static Map<String, Double> scrapeWhen(String url, Path file, java.util.function.Predicate<Map<String, Double>> ready)
            throws Exception {
        return MetricsScrape.scrapeWhen(url, file, ready, () -> true);
    }
}
