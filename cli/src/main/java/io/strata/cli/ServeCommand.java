package io.strata.cli;

import io.strata.core.chunk.ChunkCache;
import io.strata.nbd.ExportRegistry;
import io.strata.nbd.NbdServer;
import io.strata.nbd.TlsConfig;
import io.strata.nbd.TlsMode;
import io.strata.registry.prefetch.PrefetchMode;
import java.io.IOException;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code strata serve}: with a transport subcommand, one server for the images given at start;
 * without one, the daemon ({@link Daemon}): exports added and removed at runtime through the
 * control API on {@code --control PATH} ({@link ControlServer}; {@code strata ctl} is its client)
 * and the optional {@code --config FILE}, re-read on SIGHUP.
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serve images as block devices: 'serve nbd' and 'serve vhost-user' serve the images given at start;",
                "without a transport, 'serve --control PATH' is the daemon: NBD exports and vhost-user sockets added and removed",
                "at runtime through its control API (HTTP/1.1 + JSON on that unix socket; 'strata ctl' is its client), all sharing",
                "one chunk cache. SIGHUP or 'strata ctl reload' re-reads --config FILE and applies the difference."},
        subcommands = {ServeNbdCommand.class, ServeVhostUserCommand.class})
final class ServeCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--control", paramLabel = "PATH", description = "The daemon's control socket (HTTP/1.1 + JSON, mode 0600), e.g. /run/strata/control.sock.")
    Path control;

    @Option(names = "--config", paramLabel = "FILE",
            description = "Exports to serve, as JSON: {\"exports\": [{\"kind\": \"nbd\", \"name\": \"web\", \"source\": \"/images/web/bootstrap\"}, ...]}, "
                    + "each as POST /api/v1/exports takes it; re-read on SIGHUP or strata ctl reload, which add, remove and replace exports to match.")
    Path config;

    @Option(names = "--socket", paramLabel = "PATH", description = "The NBD listener's unix socket (the NBD exports are named exports on it).")
    Path socket;

    @Option(names = "--tcp", paramLabel = "[HOST][:PORT]",
            description = "The NBD listener on TCP: PORT, :PORT, HOST, HOST:PORT or [IPV6]:PORT; the host defaults to 127.0.0.1, the port to 10809.")
    String tcp;

    @Option(names = "--socket-mode", paramLabel = "OCTAL", defaultValue = "0600", converter = SocketModeConverter.class,
            description = "Permissions of the NBD --socket and of every vhost-user socket (default: ${DEFAULT-VALUE}).")
    int socketMode;

    @Option(names = "--cache-size", paramLabel = "SIZE", converter = SizeConverter.class, defaultValue = "256M",
            description = "Decompressed-chunk memory shared by all exports (default: ${DEFAULT-VALUE}).")
    long cacheSize;

    @Option(names = "--max-chunk-size", paramLabel = "SIZE", converter = SizeConverter.class, defaultValue = "1M",
            description = "The largest chunk an image may have (the shared cache's largest buffer class; strata build's default chunk is 1M; default: ${DEFAULT-VALUE}).")
    long maxChunkSize;

    @Option(names = "--legacy-kernel", description = "Serve RAFS images with a rewritten bootstrap for kernels 5.15-6.3.")
    boolean legacyKernel;

    @Option(names = "--prefetch", paramLabel = "MODE", defaultValue = "table",
            description = "For images given by reference: none, table or all (as serve nbd; default: ${DEFAULT-VALUE}).")
    String prefetch;

    @CommandLine.Mixin
    RemoteImageOptions registry;

    /** The NBD listener's TLS, as serve nbd has it (NBD_OPT_STARTTLS; one certificate for every export). */
    @CommandLine.Mixin
    TlsOptions tls;

    @CommandLine.Mixin
    MetricsLine metrics;

    @Override
    public Integer call() throws Exception {
        CommandLine cmd = spec.commandLine();
        if (control == null) {
            throw new CommandLine.ParameterException(cmd, "name a transport (nbd or vhost-user), or give --control PATH to run the daemon");
        }
        if (maxChunkSize < 4096 || maxChunkSize > (64L << 20) || Long.bitCount(maxChunkSize) != 1) {
            throw new CommandLine.ParameterException(cmd, "--max-chunk-size must be a power of two from 4K to 64M");
        }
        if (cacheSize < maxChunkSize) {
            throw new CommandLine.ParameterException(cmd, "--cache-size must hold at least one chunk (--max-chunk-size)");
        }
        metrics.check(cmd);
        registry.check(cmd);
        ServeNbdCommand.checkSocketPath(cmd, "--control", control);
        ServeNbdCommand.checkSocketPath(cmd, "--socket", socket);
        PrefetchMode mode;
        try {
            mode = PrefetchMode.parse(prefetch);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cmd, e.getMessage());
        }
        TcpListenAddress listen = null;
        if (tcp != null) {
            try {
                listen = TcpListenAddress.parse(tcp);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(cmd, e.getMessage());
            }
        }
        // SIGHUP from now on: the JVM's own handling of it would end the process (exit 129) while it
        // starts, which with a config of remote images can take minutes.
        SystemdNotifier systemd = SystemdNotifier.fromEnvironment(System.getenv());
        ConfigReload configReload = new ConfigReload(config, systemd);
        HangupReload reload = HangupReload.install(configReload);
        DaemonConfig initial;
        try {
            initial = config == null ? null : DaemonConfig.read(config);
        } catch (IOException e) {
            // At start, as a missing image is: a bad argument. A reload's bad config is only logged.
            throw new CommandLine.ParameterException(cmd, e.getMessage());
        }
        List<ServerSocketChannel> activated = SocketActivation.listeners(System.getenv());

        boolean nbdListening = socket != null || tcp != null || !activated.isEmpty();
        TlsConfig tlsConfig = tls.load(cmd);
        if (tlsConfig.mode() != TlsMode.OFF && !nbdListening) {
            throw new CommandLine.ParameterException(cmd, "--tls is for the NBD listener: give --socket or --tcp (or a systemd socket)");
        }
        ExportRegistry nbdExports = new ExportRegistry(false); // no default: clients name their export
        NbdServer nbd = new NbdServer(nbdExports, NbdServer.Options.defaults().withSocketMode(socketMode), tlsConfig);
        Daemon daemon = new Daemon(cmd, registry, mode, legacyKernel, new ChunkCache(cacheSize, (int) maxChunkSize), nbdExports, nbd,
                nbdListening, socketMode, metrics.served);
        ControlServer controlServer = null;
        AutoCloseable endpoint = null;
        try {
            // A control socket another daemon answers on is refused before anything starts.
            io.strata.core.os.UnixSocketFiles.removeStale(control);
            ServeNbdCommand.Listeners bound = ServeNbdCommand.bindAll(nbd, socket, listen, metrics);
            endpoint = bound.metricsEndpoint();
            if (initial != null) {
                try (TimeExtension extending = extendStartWhile(systemd, initial.exports().size())) {
                    CommandLoggers.serve().info("config {}: {}", config, daemon.apply(initial.exports()).summary());
                }
            }
            // Answered only now: a client that connects while the config's exports open (the one whose
            // connection started a socket-activated daemon above all) waits in the backlog and then finds
            // them, instead of being told they do not exist.
            ServeNbdCommand.listen(nbd, bound.nbd(), activated);
            controlServer = ControlServer.start(daemon, control, configReload);
        } catch (Exception e) {
            if (controlServer != null) {
                controlServer.close();
            }
            if (endpoint != null) {
                endpoint.close();
            }
            daemon.close();
            throw e;
        }
        ControlServer api = controlServer;
        // The NBD server's own series (connections open, refused), as serve nbd has them.
        metrics.served.addNbdServer(nbd.metrics());
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            CommandLoggers.serve().info("stopping on signal");
            systemd.stopping();
            try {
                api.close();
            } catch (Exception e) {
                CommandLoggers.serve().warn("control: stop: {}", e.getMessage());
            }
            daemon.close();
            stopped.countDown();
        }, "strata-shutdown"));
        reload.started(daemon);
        try (AutoCloseable metricsEndpoint = endpoint;
                AutoCloseable line = metrics.start(CommandLoggers.serve(), () -> "exports=" + daemon.exports().size() + "; "
                        + daemon.nbd().metrics().snapshot() + "; cache " + daemon.cache().stats()
                        + MetricsLine.registryFields(registry.clientIfMade()))) {
            systemd.ready("serving " + daemon.exports().size() + " export(s); control on " + control);
            stopped.await();
        }
        return 0;
    }

    /** An {@link AutoCloseable} whose close throws nothing. */
    interface TimeExtension extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * While the config's exports open (each may wait up to the registry's deadline), tells systemd
     * every 20 s to wait a minute more: its default start timeout (90 s), which also bounds a
     * {@code systemctl reload}, would end a daemon whose config names a few slow images (outside a
     * start or reload job systemd ignores it). Nothing without NOTIFY_SOCKET.
     */
    static TimeExtension extendStartWhile(SystemdNotifier systemd, int exports) {
        return extendStartWhile(systemd, "opening " + exports + " export(s) from the config");
    }

    /** As {@link #extendStartWhile(SystemdNotifier, int)}, saying {@code status}. */
    static TimeExtension extendStartWhile(SystemdNotifier systemd, String status) {
        if (!systemd.active()) {
            return () -> { };
        }
        java.util.concurrent.ScheduledExecutorService timer = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "strata-start-timeout");
            t.setDaemon(true);
            return t;
        });
        Runnable extend = () -> systemd.extendStart(java.time.Duration.ofSeconds(60), status);
        // The first one here, and shutdown() without interrupts: an interrupt that lands while
        // jnr-ffi first loads (reading its stub from the jar) fails that load for the JVM's lifetime
        // ("could not load FFI provider"), and READY=1 with it.
        extend.run();
        timer.scheduleAtFixedRate(extend, 20, 20, TimeUnit.SECONDS);
        return timer::shutdown; // cancels the periodic task
    }

    /**
     * SIGHUP re-reads the config and applies the difference ({@link ConfigReload}), on a thread of its
     * own (a signal handler must not block); a config that does not parse is logged and changes
     * nothing. Caught from the start: one that comes before the daemon is up is applied once it is.
     * sun.misc.Signal (module jdk.unsupported) is the JDK's only way to catch a signal.
     */
    static final class HangupReload {
        private final ConfigReload config;
        private volatile Daemon daemon;
        private final java.util.concurrent.atomic.AtomicBoolean pending = new java.util.concurrent.atomic.AtomicBoolean();

        private HangupReload(ConfigReload config) {
            this.config = config;
        }

        static HangupReload install(ConfigReload config) {
            HangupReload r = new HangupReload(config);
            sun.misc.SignalHandler before = sun.misc.Signal.handle(new sun.misc.Signal("HUP"), signal -> r.hangup());
            if (before == sun.misc.SignalHandler.SIG_IGN) {
                // The JVM leaves a signal ignored that it was started with ignored (nohup does that).
                CommandLoggers.serve().warn("SIGHUP was ignored when this process started (nohup?): it cannot reload"
                        + " the config; use the control API (strata ctl) to change exports");
            }
            return r;
        }

        private void hangup() {
            Daemon d = daemon;
            if (d == null) {
                pending.set(true);
                CommandLoggers.serve().info("SIGHUP while starting: the config is read again once the daemon is up");
                // The daemon may have come up between the check and the flag: whoever clears the flag reloads.
                reloadIfPending();
                return;
            }
            startReload(d);
        }

        /** The daemon is up: SIGHUPs reload from now on, and one that came during start-up does now. */
        void started(Daemon d) {
            daemon = d;
            reloadIfPending();
        }

        private void reloadIfPending() {
            Daemon d = daemon;
            if (d != null && pending.getAndSet(false)) {
                startReload(d);
            }
        }

        private void startReload(Daemon d) {
            Thread t = new Thread(() -> reload(d), "strata-reload");
            t.setDaemon(true);
            t.start();
        }

        private void reload(Daemon d) {
            try {
                Daemon.Applied applied = config.reload(d);
                if (applied == null) {
                    CommandLoggers.serve().info("SIGHUP: no --config to re-read; the exports stay as they are");
                } else {
                    CommandLoggers.serve().info("SIGHUP: config {}: {}", config.config(), applied.summary());
                }
            } catch (IOException e) {
                CommandLoggers.serve().warn("SIGHUP: {}; the exports stay as they are", e.getMessage());
            } catch (RuntimeException e) {
                CommandLoggers.serve().error("SIGHUP: applying {} failed", config.config(), e);
            }
        }
    }
}
