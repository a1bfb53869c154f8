package io.strata.cli;

import io.strata.core.device.BlockDevice;
import io.strata.nbd.Export;
import io.strata.nbd.ExportRegistry;
import io.strata.nbd.NbdServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.nio.file.Paths;
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

    @Parameters(index = "0", arity = "0..1", paramLabel = "BOOTSTRAP", description = "RAFS v6 bootstrap of the default export.")
    Path bootstrap;

    @CommandLine.Mixin
    ServedDeviceOptions image;

    @Option(names = "--export", paramLabel = "NAME=BOOTSTRAP", description = "A further named export (repeatable); NAME=raw:IMAGE serves a plain image.")
    List<String> exports = new ArrayList<>();

    @Option(names = "--socket", paramLabel = "PATH", description = "Listen on this unix socket.")
    Path socket;

    @Option(names = "--tcp", paramLabel = "HOST[:PORT]", description = "Listen on TCP (port 10809 by default).")
    String tcp;

    @Option(names = "--max-inflight", paramLabel = "N", defaultValue = "16",
            description = "Threads serving each connection (default: ${DEFAULT-VALUE}): one answers cached reads in batches of up to 16 requests; "
                    + "a batch that must load chunks keeps its thread while the next one reads, so up to N batches load at once.")
    int maxInflight;

    @Option(names = "--metrics-interval", paramLabel = "SECONDS", defaultValue = "60", description = "Log a metrics line this often; 0 turns it off (default: ${DEFAULT-VALUE}).")
    int metricsInterval;

    @Override
    public Integer call() throws Exception {
        CommandLine cmd = spec.commandLine();
        if (socket == null && tcp == null) {
            throw new CommandLine.ParameterException(cmd, "give --socket PATH and/or --tcp HOST[:PORT]");
        }
        if (!image.given(bootstrap) && exports.isEmpty()) {
            throw new CommandLine.ParameterException(cmd, "nothing to serve: give BOOTSTRAP, --raw IMAGE or --export NAME=BOOTSTRAP");
        }
        if (maxInflight < 1 || maxInflight > 256) {
            throw new CommandLine.ParameterException(cmd, "--max-inflight must be 1..256");
        }
        String host = null;
        int port = 10809;
        if (tcp != null) {
            int colon = tcp.lastIndexOf(':');
            host = colon < 0 ? tcp : tcp.substring(0, colon);
            if (colon >= 0) {
                try {
                    port = Integer.parseInt(tcp.substring(colon + 1));
                } catch (NumberFormatException e) {
                    throw new CommandLine.ParameterException(cmd, "--tcp port is not a number: " + tcp);
                }
            }
            if (port < 0 || port > 65535 || host.isEmpty()) {
                throw new CommandLine.ParameterException(cmd, "--tcp wants HOST[:PORT], got " + tcp);
            }
        }

        List<BlockDevice> devices = new ArrayList<>();
        ExportRegistry registry = new ExportRegistry();
        try {
            if (image.given(bootstrap)) {
                BlockDevice d = image.open(cmd, bootstrap);
                devices.add(d);
                registry.add(new Export("", d, d.describe()), true);
            }
            for (String spec : exports) {
                int eq = spec.indexOf('=');
                if (eq <= 0 || eq == spec.length() - 1) {
                    throw new CommandLine.ParameterException(cmd, "--export wants NAME=BOOTSTRAP, got '" + spec + "'");
                }
                String name = spec.substring(0, eq);
                String target = spec.substring(eq + 1);
                boolean isRaw = target.startsWith("raw:");
                Path p = Paths.get(isRaw ? target.substring(4) : target);
                BlockDevice d = image.open(cmd, p, isRaw);
                devices.add(d);
                try {
                    registry.add(new Export(name, d, d.describe()), false);
                } catch (IllegalArgumentException e) {
                    throw new CommandLine.ParameterException(cmd, e.getMessage());
                }
            }
            NbdServer server = new NbdServer(registry, NbdServer.Options.defaults().withMaxInflight(maxInflight));
            CountDownLatch stopped = new CountDownLatch(1);
            Thread hook = new Thread(() -> {
                CommandLoggers.serve().info("stopping on signal");
                server.close();
                closeAll(devices);
                stopped.countDown();
            }, "strata-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            if (socket != null) {
                server.listenUnix(socket);
            }
            if (tcp != null) {
                InetSocketAddress a = server.listenTcp(host, port);
                CommandLoggers.serve().info("nbd: TCP port {}", a.getPort());
            }
            for (Export e : registry.all()) {
                CommandLoggers.serve().info("nbd: export '{}': {}", e.name(), e.description());
            }
            while (!stopped.await(metricsInterval > 0 ? metricsInterval : 3600, java.util.concurrent.TimeUnit.SECONDS)) {
                if (metricsInterval > 0) {
                    CommandLoggers.serve().info("metrics: {}; cache {}", server.metrics().snapshot(), devices.get(0).cacheStats());
                }
            }
            return 0;
        } catch (IOException | RuntimeException e) {
            closeAll(devices);
            throw e;
        }
    }

    private static void closeAll(List<BlockDevice> devices) {
        for (BlockDevice d : devices) {
            try {
                d.close();
            } catch (IOException e) {
                CommandLoggers.serve().warn("closing {}: {}", d.describe(), e.getMessage());
            }
        }
    }
}
