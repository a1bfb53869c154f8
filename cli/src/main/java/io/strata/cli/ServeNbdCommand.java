package io.strata.cli;

import io.strata.core.device.BlockDevice;
import io.strata.nbd.Export;
import io.strata.nbd.ExportRegistry;
import io.strata.nbd.NbdServer;
import io.strata.nbd.TlsConfig;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "nbd", mixinStandardHelpOptions = true,
        description = {"Serve images over NBD (fixed newstyle) on unix sockets and TCP, read-only.",
                "The default export (BOOTSTRAP or --raw) answers the empty export name."})
final class ServeNbdCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", arity = "0..1", paramLabel = "BOOTSTRAP", description = "RAFS v6 bootstrap, or image reference [docker://]HOST[:PORT]/REPO[:TAG|@sha256:DIGEST], of the default export.")
    String bootstrap;

    @CommandLine.Mixin
    ServedDeviceOptions image;

    @CommandLine.Mixin
    TlsOptions tls;

    @Option(names = "--export", paramLabel = "NAME=BOOTSTRAP", description = "A further named export (repeatable): a bootstrap or an image reference; NAME=raw:IMAGE serves a plain image.")
    List<String> exports = new ArrayList<>();

    @Option(names = "--socket", paramLabel = "PATH", description = "Listen on this unix socket.")
    Path socket;

    @Option(names = "--tcp", paramLabel = "[HOST][:PORT]",
            description = "Listen on TCP: PORT, :PORT, HOST, HOST:PORT or [IPV6]:PORT; the host defaults to 127.0.0.1, the port to 10809. "
                    + "Another address than loopback, without TLS, logs a warning.")
    String tcp;

    @Option(names = "--socket-mode", paramLabel = "OCTAL", defaultValue = "0600", converter = SocketModeConverter.class,
            description = "Permissions of the --socket file (default: ${DEFAULT-VALUE}: only its owner connects).")
    int socketMode;

    @Option(names = "--max-inflight", paramLabel = "N", defaultValue = "16",
            description = "Batches of up to 16 requests one connection may have waiting for chunk loads at once, while its cached reads "
                    + "are answered (default: ${DEFAULT-VALUE}).")
    int maxInflight;

    @Option(names = "--load-threads", paramLabel = "N",
            description = "Threads, shared by all connections, that load chunks for those batches (default: twice the processors, at least 8).")
    Integer loadThreads;

    @Option(names = "--max-connections", paramLabel = "N", defaultValue = "256",
            description = "Connections served at once; more are closed at once, with a log line (default: ${DEFAULT-VALUE}).")
    int maxConnections;

    @Option(names = "--backlog", paramLabel = "N", defaultValue = "1024",
            description = "Listen backlog: connects queued before the server accepts them; the kernel trims it to net.core.somaxconn "
                    + "(default: ${DEFAULT-VALUE}).")
    int backlog;

    @Option(names = "--handshake-timeout", paramLabel = "SECONDS", defaultValue = "10",
            description = "A client that has not chosen an export this long after connecting is dropped (default: ${DEFAULT-VALUE}).")
    int handshakeTimeout;

    @Option(names = "--batch-wait", paramLabel = "MICROSECONDS", defaultValue = "20",
            description = "After answering 2 or more small requests of a connection at once, wait this long for its next ones before "
                    + "sleeping on the socket, while that gathers more: fewer, fuller reads and writes when a client keeps many requests "
                    + "in flight; 0 never waits "
                    + "(default: ${DEFAULT-VALUE}; at most 1000).")
    int batchWaitMicros;

    @CommandLine.Mixin
    MetricsLine metrics;

    @Override
    public Integer call() throws Exception {
        CommandLine cmd = spec.commandLine();
        // Under systemd socket activation (strata-nbd.socket) the listening sockets are passed in.
        List<ServerSocketChannel> activated = SocketActivation.listeners(System.getenv());
        if (socket == null && tcp == null && activated.isEmpty()) {
            throw new CommandLine.ParameterException(cmd, "give --socket PATH and/or --tcp HOST[:PORT]");
        }
        if (!image.given(bootstrap) && exports.isEmpty()) {
            throw new CommandLine.ParameterException(cmd, "nothing to serve: give BOOTSTRAP, --raw IMAGE or --export NAME=BOOTSTRAP");
        }
        if (maxInflight < 1 || maxInflight > 256) {
            throw new CommandLine.ParameterException(cmd, "--max-inflight must be 1..256");
        }
        if (loadThreads != null && (loadThreads < 1 || loadThreads > 1024)) {
            throw new CommandLine.ParameterException(cmd, "--load-threads must be 1..1024");
        }
        if (maxConnections < 1 || maxConnections > 65536) {
            throw new CommandLine.ParameterException(cmd, "--max-connections must be 1..65536");
        }
        if (backlog < 1 || backlog > 65535) {
            throw new CommandLine.ParameterException(cmd, "--backlog must be 1..65535");
        }
        if (handshakeTimeout < 1 || handshakeTimeout > 3600) {
            throw new CommandLine.ParameterException(cmd, "--handshake-timeout must be 1..3600 seconds");
        }
        long maxBatchWaitMicros = NbdServer.Options.MAX_BATCH_WAIT.toNanos() / 1000;
        if (batchWaitMicros < 0 || batchWaitMicros > maxBatchWaitMicros) {
            throw new CommandLine.ParameterException(cmd, "--batch-wait must be 0.." + maxBatchWaitMicros + " microseconds");
        }
        metrics.check(cmd);
        image.registry.check(cmd);
        checkSocketPath(cmd, "--socket", socket);
        TcpListenAddress listen = null;
        if (tcp != null) {
            try {
                listen = TcpListenAddress.parse(tcp);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(cmd, e.getMessage());
            }
        }
        NbdServer.Options options = NbdServer.Options.defaults().withMaxInflight(maxInflight).withMaxConnections(maxConnections)
                .withBacklog(backlog).withHandshakeTimeout(java.time.Duration.ofSeconds(handshakeTimeout)).withSocketMode(socketMode)
                .withBatchWait(java.time.Duration.ofNanos(batchWaitMicros * 1000L));
        if (loadThreads != null) {
            options = options.withLoadThreads(loadThreads);
        }

        TlsConfig tlsConfig = tls.load(cmd);

        List<BlockDevice> devices = new ArrayList<>();
        ExportRegistry registry = new ExportRegistry();
        try {
            if (image.given(bootstrap)) {
                BlockDevice d = image.open(cmd, bootstrap);
                devices.add(d);
                registry.add(new Export("", d, d.describeForClients()), true);
            }
            for (String spec : exports) {
                int eq = spec.indexOf('=');
                if (eq <= 0 || eq == spec.length() - 1) {
                    throw new CommandLine.ParameterException(cmd, "--export wants NAME=BOOTSTRAP, got '" + spec + "'");
                }
                String name = spec.substring(0, eq);
                String target = spec.substring(eq + 1);
                String why = Export.nameProblem(name);
                if (why != null) {
                    throw new CommandLine.ParameterException(cmd, "--export NAME=...: the name " + why);
                }
                if (name.equals(DEFAULT_EXPORT_METRICS_NAME) && image.given(bootstrap)) {
                    throw new CommandLine.ParameterException(cmd, "--export " + DEFAULT_EXPORT_METRICS_NAME
                            + "=... : that name is the default export's in the metrics; choose another");
                }
                boolean isRaw = target.startsWith("raw:");
                BlockDevice d = image.open(cmd, isRaw ? target.substring(4) : target, isRaw);
                devices.add(d);
                try {
                    registry.add(new Export(name, d, d.describeForClients()), false);
                } catch (IllegalArgumentException e) {
                    throw new CommandLine.ParameterException(cmd, e.getMessage());
                }
            }
            NbdServer server = new NbdServer(registry, options, tlsConfig);
            Listeners bound = bindAll(server, socket, listen, metrics);
            SystemdNotifier systemd = SystemdNotifier.fromEnvironment(System.getenv());
            CountDownLatch stopped = new CountDownLatch(1);
            Thread hook = new Thread(() -> {
                CommandLoggers.serve().info("stopping on signal");
                systemd.stopping();
                // The devices' memory is freed only once no connection or load can touch it.
                if (server.stop(NbdServer.DRAIN_TIMEOUT)) {
                    closeAll(devices);
                }
                stopped.countDown();
            }, "strata-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            listen(server, bound.nbd(), activated);
            metrics.served.addNbdServer(server.metrics());
            for (Export e : registry.all()) {
                CommandLoggers.serve().info("nbd: export '{}': {}", e.name(), e.device().describe());
                metrics.served.addExport(metricsName(e), "nbd", e.counters());
                metrics.served.addDevice(metricsName(e), e.device());
                image.registerMetrics(metrics.served, metricsName(e), e.device());
            }
            try (AutoCloseable endpoint = bound.metricsEndpoint();
                    AutoCloseable line = metrics.start(CommandLoggers.serve(),
                            () -> server.metrics().snapshot() + "; " + MetricsLine.deviceFields(devices.get(0), image))) {
                systemd.ready("serving " + registry.all().size() + " NBD export(s)");
                stopped.await();
            }
            return 0;
        } catch (IOException | RuntimeException e) {
            closeAll(devices);
            throw e;
        }
    }

    /**
     * The {@code export} label of an export: its name, and "default" for the default export (whose
     * NBD name is empty, and an empty label value would read as no label at all).
     */
    static String metricsName(Export e) {
        return e.name().isEmpty() ? DEFAULT_EXPORT_METRICS_NAME : e.name();
    }

    static final String DEFAULT_EXPORT_METRICS_NAME = "default";

    private static void closeAll(List<BlockDevice> devices) {
        for (BlockDevice d : devices) {
            try {
                d.close();
            } catch (IOException e) {
                CommandLoggers.serve().warn("closing {}: {}", d.describe(), e.getMessage());
            }
        }
    }

    /**
     * A bad argument (exit 2) unless {@code path} (of {@code option}; null when not given) can be a
     * listening socket: not empty, in a directory that exists, and not a file, directory or anything
     * else than a socket (a stale socket is replaced when bound, a live one refused then).
     */
    static void checkSocketPath(CommandLine cmd, String option, Path path) {
        String problem = path == null ? null : socketPathProblem(option, path);
        if (problem != null) {
            throw new CommandLine.ParameterException(cmd, problem);
        }
    }

    /** What makes {@code path} unable to be a listening socket, or null (the daemon's vhost-user exports ask too). */
    static String socketPathProblem(String option, Path path) {
        if (path.toString().isEmpty()) {
            return option + " wants a path, got ''";
        }
        String problem = io.strata.core.os.UnixSocketFiles.unusablePath(path);
        return problem == null ? null : option + " " + problem;
    }

    /**
     * Binds the NBD listeners asked for, shared with the daemon: a unix socket and a TCP address,
     * without serving them yet ({@link #listen}). A failure gives up those bound before it, and
     * names the TCP address with the system's reason.
     */
    static List<NbdServer.Bound> bind(NbdServer server, Path socket, TcpListenAddress tcp) throws IOException {
        List<NbdServer.Bound> bound = new ArrayList<>();
        try {
            if (socket != null) {
                bound.add(server.bindUnix(socket));
            }
            if (tcp != null) {
                try {
                    bound.add(server.bindTcp(tcp.host(), tcp.port()));
                } catch (IOException e) {
                    throw new IOException("--tcp " + tcp + ": " + e.getMessage(), e);
                }
            }
        } catch (IOException | RuntimeException e) {
            closeQuietly(bound);
            throw e;
        }
        return bound;
    }

    /** The NBD listeners bound and the metrics endpoint started, before any of them serves or logs. */
    record Listeners(List<NbdServer.Bound> nbd, AutoCloseable metricsEndpoint) {
    }

    /**
     * Binds the NBD listeners ({@link #bind}) and starts the metrics endpoint, shared with the daemon:
     * every listener is bound before any says it listens, so one that cannot bind fails the start
     * with one line and nothing served or logged before it. If the endpoint cannot start, the NBD
     * listeners are given up.
     */
    static Listeners bindAll(NbdServer server, Path socket, TcpListenAddress tcp, MetricsLine metrics) throws IOException {
        List<NbdServer.Bound> bound = bind(server, socket, tcp);
        try {
            return new Listeners(bound, metrics.startEndpoint(CommandLoggers.serve()));
        } catch (IOException | RuntimeException e) {
            closeQuietly(bound);
            throw e;
        }
    }

    /**
     * Serves the NBD listeners {@link #bind} bound (the TCP port is logged: port 0 asks for a free
     * one), and the sockets systemd passed.
     */
    static void listen(NbdServer server, List<NbdServer.Bound> bound, List<ServerSocketChannel> activated) throws IOException {
        for (NbdServer.Bound b : bound) {
            server.listen(b);
            if (b.address() instanceof InetSocketAddress a) {
                CommandLoggers.serve().info("nbd: TCP port {}", a.getPort());
            }
        }
        for (ServerSocketChannel listener : activated) {
            server.listenOn(listener);
        }
    }

    private static void closeQuietly(List<? extends AutoCloseable> closeables) {
        for (AutoCloseable c : closeables) {
            try {
                c.close();
            } catch (Exception ignored) {
                // giving up anyway
            }
        }
    }
}
