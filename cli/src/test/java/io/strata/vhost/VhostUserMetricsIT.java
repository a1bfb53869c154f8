package io.strata.vhost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.HostTools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --metrics-listen} on a live {@code strata serve vhost-user} (bin/strata, as a user runs
 * it), driven without QEMU by the transport's test front-end (memfd guest memory, eventfds, a split
 * queue): after known requests, curl's scrape passes {@code promtool check metrics} and the socket's
 * series count them. In this package for the front-end's package-private API.
 */
class VhostUserMetricsIT {
    @TempDir
    Path tmp;

    private static final Pattern ENDPOINT = io.strata.cli.MetricsScrape.ENDPOINT;

    @Test
    void aScrapeAfterKnownRequestsPassesPromtoolAndCountsThem() throws Exception {
        HostTools.requireTool("promtool", "prometheus");
        HostTools.requireTool("curl", "curl");
        byte[] image = new byte[1 << 20];
        new Random(9).nextBytes(image);
        Path file = tmp.resolve("disk.img");
        Files.write(file, image);
        Path socket = tmp.resolve("vhost.sock");
        Path err = tmp.resolve("serve.err");
        Path home = Paths.get(System.getenv().getOrDefault("STRATA_HOME", "..")).toAbsolutePath().normalize();
        ProcessBuilder pb = new ProcessBuilder(home.resolve("bin/strata").toString(), "serve", "vhost-user", "--raw", file.toString(),
                "--socket", socket.toString(), "--queues", "1", "--metrics-listen", "127.0.0.1:0", "--metrics-interval", "1");
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.redirectOutput(tmp.resolve("serve.out").toFile()).redirectError(err.toFile());
        Process p = pb.start();
        try {
            String url = "http://127.0.0.1:" + awaitPort(err, p) + "/metrics";
            int reads = 12;
            try (TestFrontEnd fe = new TestFrontEnd(socket)) {
                fe.setUp(true);
                for (int i = 0; i < reads; i++) {
                    long sector = 8L * i;
                    fe.submit(fe.request(VirtioBlk.T_IN, sector, 4096));
                    int[] used = fe.awaitUsed(5000);
                    assertNotNull(used, "no completion");
                    assertEquals(VirtioBlk.S_OK, fe.status());
                    assertArrayEquals(Arrays.copyOfRange(image, (int) sector * 512, (int) sector * 512 + 4096), fe.data(4096));
                }
                fe.submit(fe.request(VirtioBlk.T_OUT, 0, 512));
                assertNotNull(fe.awaitUsed(5000));
                assertEquals(VirtioBlk.S_IOERR, fe.status());
                fe.submit(fe.request(VirtioBlk.T_FLUSH, 0, 0));
                assertNotNull(fe.awaitUsed(5000));
            }
            String export = "export=\"" + socket + "\",transport=\"vhost-user\"";
            Path scrape = tmp.resolve("scrape.txt");
            Map<String, Double> v = scrapeWhen(url, scrape, x -> x.getOrDefault("strata_connections_open{" + export + "}", -1.0) == 0, p);
            HostTools.Outcome check = HostTools.execute(List.of("sh", "-c", "promtool check metrics < " + scrape));
            assertEquals(0, check.exitCode(), "promtool check metrics: " + check.output());
            assertEquals("", check.output().trim(), "promtool's findings");

            assertEquals(reads, v.get("strata_requests_total{" + export + ",type=\"read\"}"));
            assertEquals(reads * 4096.0, v.get("strata_request_bytes_total{" + export + ",type=\"read\"}"));
            assertEquals(reads, v.get("strata_request_duration_seconds_count{" + export + ",type=\"read\"}"));
            assertEquals(reads, v.get("strata_request_duration_seconds_bucket{" + export + ",type=\"read\",le=\"+Inf\"}"));
            assertEquals(1.0, v.get("strata_requests_total{" + export + ",type=\"write\"}"));
            assertEquals(1.0, v.get("strata_requests_total{" + export + ",type=\"flush\"}"));
            assertEquals(1.0, v.get("strata_request_errors_total{export=\"" + socket + "\",kind=\"read_only\",transport=\"vhost-user\"}"));
            assertEquals(0.0, v.get("strata_requests_in_flight{" + export + "}"));
            assertEquals(1.0, v.get("strata_connections_total{" + export + "}"), "one front-end session");
            assertTrue(v.containsKey("jvm_memory_used_bytes{area=\"heap\"}"), "the JVM's standard metrics");
            // The periodic log line reads the same counters.
            awaitLog(err, p, "vhost-user sessions=0 (total 1) requests=" + (reads + 2) + " in_flight=0 bytes_read=" + reads * 4096
                    + " errors=1");
        } finally {
            p.destroy();
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    /** The endpoint's port from the server's log, within 60 s; fails with the log if the server exits first. */
    private static String awaitPort(Path err, Process p) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        for (;;) {
            String log = Files.exists(err) ? Files.readString(err, StandardCharsets.UTF_8) : "";
            Matcher m = ENDPOINT.matcher(log);
            if (m.find() && log.contains("vhost-user: listening on")) {
                return m.group(1);
            }
            assertTrue(p.isAlive() && System.nanoTime() < deadline, "no metrics endpoint in the log:\n" + log);
            Thread.sleep(50);
        }
    }

    private static void awaitLog(Path err, Process p, String text) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        for (;;) {
            String log = Files.readString(err, StandardCharsets.UTF_8);
            if (log.contains(text)) {
                return;
            }
            assertTrue(p.isAlive() && System.nanoTime() < deadline, "no '" + text + "' in the log:\n" + log);
            Thread.sleep(100);
        }
    }

    private static Map<String, Double> scrapeWhen(String url, Path file, java.util.function.Predicate<Map<String, Double>> ready,
            Process p) throws Exception {
        return io.strata.cli.MetricsScrape.scrapeWhen(url, file, ready, p::isAlive);
    }
}
