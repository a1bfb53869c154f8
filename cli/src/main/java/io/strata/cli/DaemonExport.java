package io.strata.cli;

import io.strata.core.device.BlockDevice;
import io.strata.core.device.FlatDevice;
import io.strata.nbd.Export;
import io.strata.registry.prefetch.Prefetcher;
import io.strata.vhost.VhostUserServer;
import java.io.IOException;

/**
 * One export the daemon serves: its spec, its opened device, and what serves it: an NBD
 * {@link Export} in the daemon's one NBD server, or a {@link VhostUserServer} of its own. Owns the
 * device (and a remote image's prefetcher) and frees them on {@link #close}.
 */
final class DaemonExport {
    private volatile boolean deviceClosed;
    final ExportSpec spec;
    final BlockDevice device;
    /** The NBD export, or null for vhost-user. */
    final Export nbd;
    /** The vhost-user server, or null for NBD. */
    final VhostUserServer vhost;
    /** A remote image's blob source (its disk cache counters), or null. */
    final io.strata.registry.cache.RemoteBlobSource remote;
    /** A remote image's background cache fill, or null. */
    final Prefetcher prefetcher;
    /**
     * Managed by the --config file (a reload adds, replaces and removes it) rather than through the
     * control API; set later, under the daemon's change lock, when a reload finds an API export
     * listed in the file as it is.
     */
    volatile boolean fromConfig;
    /** Its series in the Prometheus endpoint, removed with it. */
    final java.util.List<io.strata.cli.metrics.MetricsRegistration> metrics = new java.util.ArrayList<>();

    DaemonExport(ExportSpec spec, BlockDevice device, Export nbd, VhostUserServer vhost, io.strata.registry.cache.RemoteBlobSource remote,
                 Prefetcher prefetcher, boolean fromConfig) {
        this.spec = spec;
        this.device = device;
        this.nbd = nbd;
        this.vhost = vhost;
        this.remote = remote;
        this.prefetcher = prefetcher;
        this.fromConfig = fromConfig;
    }

    String name() {
        return spec.exportName();
    }

    /** Cache memory this export's chunks hold now (its share of the daemon's one cache); 0 for a raw image. */
    long cacheBytes() {
        return device instanceof FlatDevice f ? f.cacheResidentBytes() : 0;
    }

    /** What clients did with this export: its transport's counters (requests, bytes, errors). */
    io.strata.core.metrics.ExportCounters counters() {
        return nbd != null ? nbd.counters() : vhost.counters();
    }

    /**
     * Closes the prefetcher, the vhost-user server (ending its session) and the device; NBD clients
     * must be gone already. Returns false if the device closes later (see {@link #closeDevice}).
     */
    boolean close() {
        stopServing();
        return closeDevice();
    }

    /** Takes its metrics away and stops its prefetcher: all but the device, which clients may still be reading. */
    void stopServing() {
        metrics.forEach(io.strata.cli.metrics.MetricsRegistration::close);
        metrics.clear();
        if (prefetcher != null) {
            prefetcher.close();
        }
    }

    /**
     * Closes the vhost-user server (ending its session) and the device, freeing its cache memory; if
     * the session or a load it started is still running (a read stalled on its registry), the device
     * is closed by a thread once they end, never under them, and this returns false.
     */
    boolean closeDevice() {
        if (vhost != null) {
            boolean drained;
            try {
                drained = vhost.stop(io.strata.vhost.VhostUserServer.DRAIN_TIMEOUT);
            } catch (IOException e) {
                CommandLoggers.serve().warn("export {}: closing its socket: {}", name(), e.getMessage());
                drained = false;
            }
            if (!drained) {
                Thread later = new Thread(() -> {
                    try {
                        vhost.awaitStopped();
                        closeDeviceNow();
                        CommandLoggers.serve().info("export '{}': its vhost-user session ended; device closed", name());
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt(); // the process is ending: its memory goes with it
                    }
                }, "strata-close-" + name());
                later.setDaemon(true);
                later.start();
                return false;
            }
        }
        closeDeviceNow();
        return true;
    }

    /** Whether the device is closed (its cache memory freed); false while a deferred close waits. */
    boolean deviceClosed() {
        return deviceClosed;
    }

    private void closeDeviceNow() {
        deviceClosed = true;
        try {
            device.close();
        } catch (IOException e) {
            CommandLoggers.serve().warn("export {}: closing {}: {}", name(), device.describe(), e.getMessage());
        }
    }
}
