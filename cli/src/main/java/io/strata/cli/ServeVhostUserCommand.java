package io.strata.cli;

import io.strata.core.device.BlockDevice;
import io.strata.vhost.VhostUserServer;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "vhost-user", mixinStandardHelpOptions = true,
        description = {"Serve an image as a read-only vhost-user-blk back-end for QEMU:",
                "  -chardev socket,id=c0,path=SOCK -device vhost-user-blk-pci,chardev=c0,num-queues=N",
                "(guest memory must be shared: -object memory-backend-memfd,id=mem,size=...,share=on -numa node,memdev=mem)."})
final class ServeVhostUserCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", arity = "0..1", paramLabel = "BOOTSTRAP", description = "RAFS v6 bootstrap, or image reference [docker://]HOST[:PORT]/REPO[:TAG|@sha256:DIGEST], to serve.")
    String bootstrap;

    @CommandLine.Mixin
    ServedDeviceOptions image;

    @Option(names = "--socket", paramLabel = "PATH", required = true, description = "The unix socket QEMU connects to.")
    Path socket;

    @Option(names = "--socket-mode", paramLabel = "OCTAL", defaultValue = "0600", converter = SocketModeConverter.class,
            description = "Permissions of the socket file (default: ${DEFAULT-VALUE}: only its owner, e.g. QEMU run as the same user, connects).")
    int socketMode;

    @Option(names = "--queues", paramLabel = "N", defaultValue = "16",
            description = "Queues offered (GET_QUEUE_NUM); QEMU's num-queues must not exceed it, and defaults to the guest's vCPU count (default: ${DEFAULT-VALUE}).")
    int queues;

    @CommandLine.Mixin
    MetricsLine metrics;

    @Override
    public Integer call() throws Exception {
        CommandLine cmd = spec.commandLine();
        if (queues < 1 || queues > 255) {
            throw new CommandLine.ParameterException(cmd, "--queues must be 1..255");
        }
        metrics.check(cmd);
        image.registry.check(cmd);
        ServeNbdCommand.checkSocketPath(cmd, "--socket", socket);
        BlockDevice device = image.open(cmd, bootstrap);
        // The metrics endpoint and the socket are bound before anything is served or a stop hook is
        // set, as serve nbd binds its listeners and endpoint: a port or path in use fails the start
        // with one line, nothing left bound.
        AutoCloseable endpoint;
        VhostUserServer server;
        try {
            endpoint = metrics.startEndpoint(CommandLoggers.serve());
        } catch (Exception e) {
            device.close();
            throw e;
        }
        try {
            server = new VhostUserServer(socket, device, queues, socketMode);
        } catch (Exception e) {
            endpoint.close();
            device.close();
            throw e;
        }
        // One device per socket: the socket's path names it in the metrics.
        metrics.served.addExport(socket.toString(), "vhost-user", server.counters());
        metrics.served.addDevice(socket.toString(), device);
        image.registerMetrics(metrics.served, socket.toString(), device);
        SystemdNotifier systemd = SystemdNotifier.fromEnvironment(System.getenv());
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            CommandLoggers.serve().info("stopping on signal");
            systemd.stopping();
            try {
                // The device's memory is freed only once no session or load can touch it.
                if (server.stop(io.strata.vhost.VhostUserServer.DRAIN_TIMEOUT)) {
                    device.close();
                }
            } catch (Exception e) {
                CommandLoggers.serve().warn("stop: {}", e.getMessage());
            }
            stopped.countDown();
        }, "strata-shutdown"));
        CommandLoggers.serve().info("vhost-user: serving {}", device.describe());
        server.start();
        try (AutoCloseable metricsEndpoint = endpoint;
                AutoCloseable line = metrics.start(CommandLoggers.serve(),
                        () -> MetricsLine.deviceFields(device, image) + "; vhost-user " + MetricsLine.exportFields(server.counters()))) {
            systemd.ready("serving vhost-user on " + socket);
            stopped.await();
        }
        return 0;
    }
}
