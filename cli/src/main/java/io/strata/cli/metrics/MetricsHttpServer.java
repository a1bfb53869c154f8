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

    /** Listens on {@code host:port} (port 0 picks a free one) until closed. */
    public static MetricsHttpServer start(ServedMetrics metrics, String host, int port) throws IOException {
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
