package io.strata.cli;

import io.strata.core.device.BlockDevice;
import io.strata.nbd.Export;
import io.strata.nbd.ExportRegistry;
import io.strata.nbd.KernelAttach;
import io.strata.nbd.NbdDeviceNode;
import io.strata.nbd.NbdServer;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "attach", mixinStandardHelpOptions = true,
        description = {"Serve an image as /dev/nbdN through the kernel's nbd driver (ioctls, no handshake).",
                "Runs in the foreground; SIGTERM or SIGINT disconnects cleanly and frees the device."})
final class AttachCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "DEVICE", description = "The nbd device, e.g. /dev/nbd0 (modprobe nbd first).")
    Path nbdDevice;

    @Parameters(index = "1", arity = "0..1", paramLabel = "BOOTSTRAP", description = "RAFS v6 bootstrap, or image reference [docker://]HOST[:PORT]/REPO[:TAG|@sha256:DIGEST], to serve.")
    String bootstrap;

    @CommandLine.Mixin
    ServedDeviceOptions image;

    @Option(names = "--connections", paramLabel = "N", defaultValue = "1", description = "Sockets the kernel spreads requests over (default: ${DEFAULT-VALUE}).")
    int connections;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "0",
            description = {"Kernel request timeout; 0, the default, for none (as qemu-nbd). A request slower than a",
                "timeout ends the device for good (the kernel cannot reconnect it), e.g. a read waiting on a slow",
                "registry; without one, reads still fail at Strata's own --registry-deadline. (With several",
                "connections the kernel has no 'none': it gets 23 days.)"})
    int timeout;

    @CommandLine.Mixin
    MetricsLine metrics;

    @Override
    public Integer call() throws Exception {
        CommandLine cmd = spec.commandLine();
        if (connections < 1 || connections > 64) {
            throw new CommandLine.ParameterException(cmd, "--connections must be 1..64");
        }
        if (timeout < 0) {
            throw new CommandLine.ParameterException(cmd, "--timeout must be 0 (none) or a number of seconds");
        }
        metrics.check(cmd);
        image.registry.check(cmd);
        String notNbd = NbdDeviceNode.whyNot(nbdDevice);
        if (notNbd != null) {
            throw new CommandLine.ParameterException(cmd, notNbd);
        }
        BlockDevice device = image.open(cmd, bootstrap);
        ExportRegistry registry = new ExportRegistry();
        Export export = new Export("", device, device.describeForClients());
        registry.add(export, true);
        NbdServer server = new NbdServer(registry, NbdServer.Options.defaults());
        KernelAttach attached;
        try {
            attached = KernelAttach.attach(nbdDevice, export, server, connections, timeout);
        } catch (Exception e) {
            server.close();
            device.close();
            throw e;
        }
        Thread hook = new Thread(() -> {
            CommandLoggers.attach().info("detaching {} on signal", nbdDevice);
            try {
                attached.close();
            } catch (Exception e) {
                CommandLoggers.attach().warn("detach: {}", e.getMessage());
            }
            if (server.stop(NbdServer.DRAIN_TIMEOUT)) { // else a load may still use the device's memory
                try {
                    device.close();
                } catch (Exception ignored) {
                    // exiting anyway
                }
            }
        }, "strata-detach");
        Runtime.getRuntime().addShutdownHook(hook);
        System.out.println("attached " + nbdDevice + ": " + device.describe());
        System.out.flush();
        // The kernel's connections serve the one export; the nbd device's path names it in the metrics.
        metrics.served.addExport(nbdDevice.toString(), "nbd", export.counters());
        metrics.served.addNbdServer(server.metrics());
        metrics.served.addDevice(nbdDevice.toString(), device);
        image.registerMetrics(metrics.served, nbdDevice.toString(), device);
        String dropped;
        try (AutoCloseable endpoint = metrics.startEndpoint(CommandLoggers.attach());
                AutoCloseable line = metrics.start(CommandLoggers.attach(),
                        () -> server.metrics().snapshot() + "; " + MetricsLine.deviceFields(device, image))) {
            dropped = attached.awaitDisconnect();
        }
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException signalled) {
            return 0; // a signal: the hook detaches and frees the device
        }
        // The kernel ended it: someone else's disconnect (nbd-client -d), or a failure.
        CommandLoggers.attach().info("{} disconnected{}", nbdDevice, dropped == null ? "" : " by the kernel: " + dropped);
        attached.close();
        if (server.stop(NbdServer.DRAIN_TIMEOUT)) {
            device.close();
        }
        if (dropped != null) {
            throw new java.io.IOException(nbdDevice + ": the kernel dropped the device: " + dropped);
        }
        return 0;
    }
}
