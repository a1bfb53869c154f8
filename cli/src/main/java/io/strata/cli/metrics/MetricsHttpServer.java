package io.strata.cli.metrics;

import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;

/**
 * {@code --metrics-listen}: the Prometheus endpoint ({@code GET /metrics}, the Prometheus Java
 * client's HTTP server) serving Strata's series ({@link ServedMetrics}) and the JVM's standard ones
 * (memory, GC, threads, classes, process CPU and file descriptors).
 */
public final class MetricsHttpServer implements AutoCloseable {
    private final HTTPServer server;

    private MetricsHttpServer(HTTPServer server) {
        this.server = server;
    }

    /**
     * Seconds a client has to send its whole request, and to take the whole response. The JDK's HTTP
     * server (under the Prometheus client's) waits for ever by default, on a pool of 10 threads: a
     * dozen connections that send half a request stopped every scrape (a slowloris from any local
     * user). The JDK reads these when its first HTTP server is made; a caller's own values win.
     */
    static final String MAX_REQUEST_SECONDS = "5";
    static final String MAX_RESPONSE_SECONDS = "30";

    /** Listens on {@code host:port} (port 0 picks a free one) until closed. */
    public static MetricsHttpServer start(ServedMetrics metrics, String host, int port) throws IOException {
        if (System.getProperty("sun.net.httpserver.maxReqTime") == null) {
            System.setProperty("sun.net.httpserver.maxReqTime", MAX_REQUEST_SECONDS);
        }
        if (System.getProperty("sun.net.httpserver.maxRspTime") == null) {
            System.setProperty("sun.net.httpserver.maxRspTime", MAX_RESPONSE_SECONDS);
        }
        PrometheusRegistry registry = new PrometheusRegistry();
        registry.register(metrics);
        JvmMetrics.builder().register(registry);
        return new MetricsHttpServer(HTTPServer.builder().hostname(host).port(port).registry(registry).buildAndStart());
    }

    /** The port it listens on. */
    public int port() {
        return server.getPort();
    }

    @Override
    public void close() {
        server.close();
    }
}
