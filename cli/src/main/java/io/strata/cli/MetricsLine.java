package io.strata.cli;

import io.strata.cli.metrics.MetricsHttpServer;
import io.strata.cli.metrics.ServedMetrics;
import io.strata.core.device.BlockDevice;
import java.io.IOException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * The metrics of every server (serve nbd, serve vhost-user, attach): a mixin owning
 * {@code --metrics-listen}, the Prometheus endpoint serving {@link #served} (what the command
 * registers there: its exports and devices), and {@code --metrics-interval}, the periodic
 * {@code metrics:} log line, with the one timer that logs it. Each server says
 * what its line starts with (NBD: its connection and request counters); the rest is the same for all
 * ({@link #deviceFields}): the chunk cache, then, for images given by reference, the registry's
 * requests, bytes, retries, errors and latency, the disk cache's hits and misses and prefetch progress.
 */
final class MetricsLine {
    @Option(names = "--metrics-interval", paramLabel = "SECONDS", defaultValue = "60",
            description = "Log a metrics line this often; 0 turns it off (default: ${DEFAULT-VALUE}).")
    int intervalSeconds;

    @Option(names = "--metrics-listen", paramLabel = "[HOST:]PORT",
            description = "Serve Prometheus metrics (GET /metrics: requests, errors, latency, connections, chunk cache, "
                    + "registry, JVM) on this TCP address; the host defaults to 127.0.0.1, port 0 picks a free one (logged). Off unless given.")
    String listen;

    private TcpListenAddress listenAddress;

    /** What the Prometheus endpoint reports; commands register their exports and devices here, listening or not. */
    final ServedMetrics served = new ServedMetrics();

    /** A usage error (exit 2) for an interval or address out of range; call before opening anything. */
    void check(CommandLine cmd) {
        if (intervalSeconds < 0 || intervalSeconds > 86_400) {
            throw new CommandLine.ParameterException(cmd, "--metrics-interval must be 0..86400 seconds");
        }
        if (listen != null) {
            try {
                listenAddress = TcpListenAddress.parse(listen, "--metrics-listen", -1);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(cmd, e.getMessage());
            }
        }
    }

    /**
     * Starts the Prometheus endpoint when {@code --metrics-listen} was given (one log line with its
     * address); closing the handle stops it. Does nothing otherwise.
     */
    AutoCloseable startEndpoint(Logger log) throws IOException {
        if (listenAddress == null) {
            return () -> { };
        }
        String host = listenAddress.host().contains(":") ? "[" + listenAddress.host() + "]" : listenAddress.host();
        MetricsHttpServer server;
        try {
            server = MetricsHttpServer.start(served, listenAddress.host(), listenAddress.port());
        } catch (IOException e) {
            throw new IOException("--metrics-listen " + host + ":" + listenAddress.port() + ": " + e.getMessage(), e);
        }
        log.info("metrics: Prometheus endpoint on http://{}:{}/metrics", host, server.port());
        if (!java.net.InetAddress.getByName(listenAddress.host()).isLoopbackAddress()) {
            // The endpoint has no authentication, like Prometheus exporters generally: say who can read it.
            log.warn("metrics: the endpoint on {} is not loopback: anyone who can reach it reads the export names and counters", host);
        }
        return server;
    }

    /**
     * Logs {@code "metrics: " + line.get()} every interval on a daemon thread until the returned
     * handle is closed; does nothing when the interval is 0.
     */
    AutoCloseable start(Logger log, Supplier<String> line) {
        if (intervalSeconds <= 0) {
            return () -> { };
        }
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "strata-metrics");
            t.setDaemon(true);
            return t;
        });
        timer.scheduleAtFixedRate(() -> {
            try {
                log.info("metrics: {}", line.get());
            } catch (RuntimeException e) {
                // A counter read failing (a device closing under us) must not end the timer.
                log.warn("metrics: {}", e.toString());
            }
        }, intervalSeconds, intervalSeconds, TimeUnit.SECONDS);
        return timer::shutdownNow;
    }

    /** A transport's own counters for the line (vhost-user's; NBD's line starts with its server's): sessions, requests, bytes, errors. */
    static String exportFields(io.strata.core.metrics.ExportCounters c) {
        return "sessions=" + c.connectionsOpen() + " (total " + c.connectionsTotal() + ") requests=" + c.requests() + " in_flight="
                + c.inFlight() + " bytes_read=" + c.bytes(io.strata.core.metrics.RequestType.READ) + " errors=" + c.errors();
    }

    /**
     * Per registry the client has talked to: "; " and its requests, bytes, retries, errors and fetch
     * latency; "" before the client is made (every image local so far).
     */
    static String registryFields(io.strata.registry.RegistryClient client) {
        if (client == null) {
            return "";
        }
        StringBuilder b = new StringBuilder();
        for (io.strata.registry.RegistryMetrics m : client.metrics().values()) {
            b.append("; ").append(m.summary());
        }
        return b.toString();
    }

    /** The fields every server's line ends with: the device's chunk cache, then the registry part (see {@link ServedDeviceOptions#registryMetrics}). */
    static String deviceFields(BlockDevice device, ServedDeviceOptions image) {
        return "cache " + device.cacheStats() + image.registryMetrics();
    }
}
