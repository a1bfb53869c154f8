package io.strata.cli.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.metrics.ErrorKind;
import io.strata.core.metrics.ExportCounters;
import io.strata.core.metrics.RequestType;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * The exporter's run-time registrations, scraped over HTTP from the Prometheus client's server: an
 * export's series appear when it is registered, carry its counters' values, and disappear when
 * its registration is closed (what a daemon removing an export needs); a second registration of
 * the same export and transport is refused; the JVM's series are there.
 */
class ServedMetricsIT {
    private static String scrape(int port) throws Exception {
        HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics"))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        return r.body();
    }

    @Test
    void exportsComeAndGoAtRunTime() throws Exception {
        ServedMetrics served = new ServedMetrics();
        ExportCounters a = new ExportCounters();
        ExportCounters b = new ExportCounters();
        for (int i = 0; i < 3; i++) {
            a.received(1);
            a.answered(RequestType.READ, 4096, 2_000_000); // 2 ms: the 2.5 ms bucket
        }
        a.received(1);
        a.failed(RequestType.WRITE, ErrorKind.READ_ONLY, 1000);
        a.connectionOpened();
        try (MetricsHttpServer http = MetricsHttpServer.start(served, "127.0.0.1", 0)) {
            MetricsRegistration ra = served.addExport("a", "nbd", a);
            MetricsRegistration rb = served.addExport("b", "vhost-user", b);
            assertThrows(IllegalArgumentException.class, () -> served.addExport("a", "nbd", new ExportCounters()));
            String text = scrape(http.port());
            assertTrue(text.contains("strata_requests_total{export=\"a\",transport=\"nbd\",type=\"read\"} 3.0"), text);
            assertTrue(text.contains("strata_request_bytes_total{export=\"a\",transport=\"nbd\",type=\"read\"} 12288.0"), text);
            assertTrue(text.contains("strata_request_errors_total{export=\"a\",kind=\"read_only\",transport=\"nbd\"} 1.0"), text);
            assertTrue(text.contains("strata_request_duration_seconds_count{export=\"a\",transport=\"nbd\",type=\"read\"} 3"), text);
            assertTrue(text.contains("strata_request_duration_seconds_bucket{export=\"a\",transport=\"nbd\",type=\"read\",le=\"0.001\"} 0"), text);
            assertTrue(text.contains("strata_request_duration_seconds_bucket{export=\"a\",transport=\"nbd\",type=\"read\",le=\"0.0025\"} 3"), text);
            assertTrue(text.contains("strata_request_duration_seconds_bucket{export=\"a\",transport=\"nbd\",type=\"read\",le=\"+Inf\"} 3"), text);
            assertTrue(text.contains("strata_connections_open{export=\"a\",transport=\"nbd\"} 1.0"), text);
            assertFalse(text.contains("type=\"flush\""), "no series for a type nobody sent: " + text);
            assertTrue(text.contains("strata_requests_total{export=\"b\",transport=\"vhost-user\",type=\"read\"} 0.0"), text);
            assertTrue(text.contains("jvm_memory_used_bytes"), "the JVM's standard metrics");

            ra.close();
            ra.close(); // twice: nothing more happens
            text = scrape(http.port());
            assertFalse(text.contains("export=\"a\""), text);
            assertTrue(text.contains("export=\"b\""), text);
            rb.close();
            text = scrape(http.port());
            assertFalse(text.contains("export="), "no export, no export series: " + text);
            assertTrue(text.contains("strata_build_info{version="), text);
            served.addExport("a", "nbd", a).close(); // the name is free again
        }
    }
}
