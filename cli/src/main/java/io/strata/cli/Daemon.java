package io.strata.cli;

import io.strata.core.chunk.ChunkCache;
import io.strata.core.device.BlockDevice;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.nbd.Export;
import io.strata.nbd.ExportRegistry;
import io.strata.nbd.NbdServer;
import io.strata.registry.prefetch.PrefetchMode;
import io.strata.registry.prefetch.Prefetcher;
import io.strata.vhost.VhostUserServer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import picocli.CommandLine;

/**
 * The daemon ({@code strata serve --control PATH}): any number of exports, added and removed while
 * it runs, NBD ones as named exports of one NBD server and vhost-user ones each on its socket, all
 * reading through one chunk cache (one memory bound) and, for images by reference, one registry
 * client and one disk cache. The control API ({@link ControlServer}) and SIGHUP ({@link #apply})
 * call it; changes are serialized, reads ({@link #exports}) are not.
 */
final class Daemon implements AutoCloseable {
    /** How long a forced remove waits for its clients' connections to end before giving up on closing the device. */
    private static final Duration DISCONNECT_WAIT = Duration.ofSeconds(10);

    private final CommandLine cmd;
    private final RemoteImageOptions registry;
    private final PrefetchMode prefetch;
    private final boolean legacyKernel;
    private final ChunkCache cache;
    private final ExportRegistry nbdExports;
    private final NbdServer nbd;
    private final boolean nbdListening;
    private final int socketMode;
    /** The Prometheus endpoint's registry (--metrics-listen): each export's series come and go with it. */
    private final io.strata.cli.metrics.ServedMetrics served;
    /** Exports by name, in the order added. */
    private final Map<String, DaemonExport> exports = java.util.Collections.synchronizedMap(new LinkedHashMap<>());
    /** Exports removed while a read still ran in them: their devices close later (see {@link #closingLater}). */
    private final Set<DaemonExport> removedStillClosing = ConcurrentHashMap.newKeySet();
    /** Names being added or removed right now: a second request for one of them is refused, not queued behind a slow open. */
    private final Set<String> busy = ConcurrentHashMap.newKeySet();
    private final ReentrantLock changes = new ReentrantLock();

    Daemon(CommandLine cmd, RemoteImageOptions registry, PrefetchMode prefetch, boolean legacyKernel, ChunkCache cache,
           ExportRegistry nbdExports, NbdServer nbd, boolean nbdListening, int socketMode, io.strata.cli.metrics.ServedMetrics served) {
        this.cmd = cmd;
        this.registry = registry;
        this.prefetch = prefetch;
        this.legacyKernel = legacyKernel;
        this.cache = cache;
        this.nbdExports = nbdExports;
        this.nbd = nbd;
        this.nbdListening = nbdListening;
        this.socketMode = socketMode;
        this.served = served;
        served.addRegistryClient(registry::clientIfMade);
    }

    ChunkCache cache() {
        return cache;
    }

    NbdServer nbd() {
        return nbd;
    }

    List<DaemonExport> exports() {
        synchronized (exports) {
            return List.copyOf(exports.values());
        }
    }

    DaemonExport find(String name) {
        return exports.get(name);
    }

    /** Opens the spec's image and starts serving it; 409 if the name is taken, 400 for a bad source. */
    DaemonExport add(ExportSpec requested, boolean fromConfig) throws ControlException {
        return add(requested.validated(), fromConfig, null);
    }

    /** As {@link #add(ExportSpec, boolean)} for a validated spec whose device may be open already (then closed on failure). */
    private DaemonExport add(ExportSpec spec, boolean fromConfig, OpenedDevice preopened) throws ControlException {
        String name = spec.exportName();
        try {
            if (ExportSpec.NBD.equals(spec.kind()) && !nbdListening) {
                throw new ControlException(409, "the daemon has no NBD listener: start it with --socket PATH or --tcp [HOST][:PORT]");
            }
            if (exports.containsKey(name) || !busy.add(name)) {
                throw new ControlException(409, "export '" + name + "' exists already");
            }
        } catch (ControlException refused) {
            if (preopened != null) {
                preopened.close();
            }
            throw refused;
        }
        if (ExportSpec.VHOST_USER.equals(spec.kind())) {
            String problem = ServeNbdCommand.socketPathProblem("socket", Path.of(spec.socket()));
            if (problem != null) {
                busy.remove(name);
                if (preopened != null) {
                    preopened.close();
                }
                throw ControlException.badRequest(problem);
            }
        }
        try {
            DaemonExport e = serve(spec, preopened != null ? preopened : openDevice(spec), fromConfig);
            try {
                String transport = e.nbd != null ? "nbd" : "vhost-user";
                e.metrics.add(served.addExport(name, transport, e.nbd != null ? e.nbd.counters() : e.vhost.counters()));
                e.metrics.add(served.addDevice(name, e.device));
                if (e.remote != null) {
                    e.metrics.add(served.addRemoteImage(name, e.remote.counters(), e.prefetcher == null ? null : e.prefetcher.progress()));
                }
            } catch (RuntimeException ex) {
                closeAfterFailedAdd(e);
                throw new ControlException(500, "export '" + name + "': its metrics: " + ex.getMessage());
            }
            exports.put(name, e);
            CommandLoggers.serve().info("export '{}' added ({}): {}", name, spec.kind(), e.device.describe());
            return e;
        } finally {
            busy.remove(name);
        }
    }

    private void closeAfterFailedAdd(DaemonExport e) {
        if (e.nbd != null) {
            nbdExports.remove(e.name());
        }
        e.close();
    }

    /** An export's device, opened before it is served (a reload opens a changed entry's before it takes the old one down). */
    private record OpenedDevice(BlockDevice device, io.strata.registry.cache.RemoteBlobSource remote, Prefetcher prefetcher) {
        void close() {
            closeQuietly(prefetcher, device);
        }
    }

    /** Opens the spec's image (or raw file); 400 when it cannot be served. Slow for a remote image: no lock is held. */
    private OpenedDevice openDevice(ExportSpec spec) throws ControlException {
        BlockDevice device = null;
        Prefetcher prefetcher = null;
        io.strata.registry.cache.RemoteBlobSource remote = null;
        try {
            if (spec.raw() != null) {
                device = DeviceSpec.openRaw(cmd, Paths.get(spec.raw()));
            } else {
                ImageSource.Opened opened = ImageSource.open(cmd, spec.source(), spec.blobDir() == null ? null : Paths.get(spec.blobDir()), registry);
                FlatDeviceOptions options = new FlatDeviceOptions(cache.capacityBytes(), legacyKernel);
                if (opened.remote() != null) {
                    remote = opened.remote();
                    // As serve nbd: one parse for the prefetch and the device, prefetch started first.
                    RemoteImageDevice opens = RemoteImageDevice.open(opened, prefetch, registry.registry.connections, options, cache);
                    prefetcher = opens.prefetcher();
                    device = opens.device();
                } else {
                    device = FlatDevice.open(opened.bootstrap(), opened.blobs(), options, cache);
                }
            }
            return new OpenedDevice(device, remote, prefetcher);
        } catch (CommandLine.ParameterException e) {
            closeQuietly(prefetcher, device);
            throw ControlException.badRequest(e.getMessage());
        } catch (IOException | RuntimeException e) {
            closeQuietly(prefetcher, device);
            String msg = e.getMessage() == null ? e.toString() : e.getMessage();
            // The image or socket could not be opened: the request named something unusable.
            throw new ControlException(e instanceof RuntimeException && !(e instanceof IllegalArgumentException) ? 500 : 400,
                    "cannot serve " + (spec.raw() != null ? spec.raw() : spec.source()) + ": " + msg, e instanceof IllegalArgumentException);
        }
    }

    /** Serves an opened device as the spec's export (a named NBD export, or a vhost-user socket); closes it on failure. */
    private DaemonExport serve(ExportSpec spec, OpenedDevice opened, boolean fromConfig) throws ControlException {
        BlockDevice device = opened.device();
        try {
            if (ExportSpec.NBD.equals(spec.kind())) {
                Export export = new Export(spec.name(), device, device.describeForClients());
                nbdExports.add(export, false);
                return new DaemonExport(spec, device, export, null, opened.remote(), opened.prefetcher(), fromConfig);
            }
            VhostUserServer server = new VhostUserServer(Path.of(spec.socket()), device, spec.queues(), socketMode);
            server.start();
            return new DaemonExport(spec, device, null, server, opened.remote(), opened.prefetcher(), fromConfig);
        } catch (IOException | RuntimeException e) {
            opened.close();
            String msg = e.getMessage() == null ? e.toString() : e.getMessage();
            // The image opened: what failed is the export's name, or for vhost-user its socket (the error names it).
            String what = ExportSpec.NBD.equals(spec.kind()) ? "cannot serve " + (spec.raw() != null ? spec.raw() : spec.source()) + ": "
                    : msg.contains(spec.socket()) ? "" : "socket " + spec.socket() + ": ";
            throw new ControlException(e instanceof RuntimeException && !(e instanceof IllegalArgumentException) ? 500 : 400, what + msg,
                    e instanceof IllegalArgumentException);
        }
    }

    private static void closeQuietly(Prefetcher prefetcher, BlockDevice device) {
        if (prefetcher != null) {
            prefetcher.close();
        }
        if (device != null) {
            try {
                device.close();
            } catch (IOException ignored) {
                // the add failed anyway
            }
        }
    }

    /** Clients connected to an export now: NBD connections in transmission, or 1 while QEMU is connected to its vhost-user socket. */
    int clients(DaemonExport e) {
        return e.nbd != null ? nbd.clients(e.nbd) : (e.vhost.connected() ? 1 : 0);
    }

    /**
     * Stops serving an export and frees its device, memory and threads. Refused (409) while clients
     * are connected, unless {@code force}: then they are disconnected (their sockets closed after the
     * replies in flight) first. False when a disconnected client was still in a read after
     * {@link #DISCONNECT_WAIT} (or a vhost-user session still in a load after its drain timeout): the
     * export is removed, and its device is closed once that read ends.
     */
    boolean remove(String name, boolean force) throws ControlException {
        changes.lock();
        try {
            DaemonExport e = exports.get(name);
            if (e == null || !busy.add(name)) {
                throw new ControlException(404, "no export '" + name + "'");
            }
            try {
                int clients = clients(e);
                if (clients > 0 && !force) {
                    throw new ControlException(409, "export '" + name + "' has " + clients + " client(s) connected; remove it with force to disconnect them");
                }
                if (e.nbd != null) {
                    nbdExports.remove(name);
                    boolean gone;
                    try {
                        gone = nbd.disconnect(e.nbd, DISCONNECT_WAIT);
                    } catch (InterruptedException ie) {
                        Thread.currentThread().interrupt();
                        gone = false;
                    }
                    if (!gone) {
                        // A connection still in a load (a slow registry read, until its deadline): closing
                        // the device under it would free memory it reads. The export is gone for clients;
                        // its device closes once the last such connection has ended.
                        exports.remove(name);
                        e.stopServing();
                        closingLater(e);
                        closeWhenDisconnected(e);
                        CommandLoggers.serve().warn("export '{}' removed; {} client(s) still finishing a read {} s after being "
                                + "disconnected: its device closes when they end", name, nbd.clients(e.nbd), DISCONNECT_WAIT.toSeconds());
                        return false;
                    }
                }
                exports.remove(name);
                if (!e.close()) {
                    // A vhost-user session still in a load: its device closes once the session ends.
                    closingLater(e);
                    CommandLoggers.serve().warn("export '{}' removed; its vhost-user session is still finishing a read {} s after "
                            + "being stopped: its device closes when it ends", name, io.strata.vhost.VhostUserServer.DRAIN_TIMEOUT.toSeconds());
                    return false;
                }
                CommandLoggers.serve().info("export '{}' removed{}", name, clients > 0 ? " (" + clients + " client(s) disconnected)" : "");
                return true;
            } finally {
                busy.remove(name);
            }
        } finally {
            changes.unlock();
        }
    }

    /** Notes a removed export whose device closes later, for {@link #close} (the cache must outlive it). */
    private void closingLater(DaemonExport e) {
        removedStillClosing.removeIf(DaemonExport::deviceClosed);
        removedStillClosing.add(e);
    }

    /** Closes a removed NBD export's device once its last (disconnected) client has ended, on a thread of its own. */
    private void closeWhenDisconnected(DaemonExport e) {
        Thread closer = new Thread(() -> {
            try {
                while (!nbd.disconnect(e.nbd, DISCONNECT_WAIT)) {
                    // still in a read: a load has its own deadline, so this ends
                }
            } catch (InterruptedException ie) {
                return; // the daemon is stopping: its close frees everything
            }
            e.closeDevice();
            CommandLoggers.serve().info("export '{}': its last client ended; device closed", e.name());
        }, "strata-close-" + e.name());
        closer.setDaemon(true);
        closer.start();
    }

    /**
     * Makes the exports the --config file manages match {@code wanted}: adds the new, removes (with
     * force) those gone, replaces the changed, leaves the unchanged serving. A new or changed entry's
     * image is opened first, with no lock held (a remote image may take the registry's deadline), and
     * only once it is open is the old export taken down: an entry that cannot be served (a typo, a
     * file that is not an image, a registry that does not answer) leaves its export serving as it was,
     * clients connected. Exports added through the control API are not the file's and are left alone.
     * One bad entry is logged and skipped; the rest still apply. Returns what changed and what could not.
     */
    Applied apply(List<ExportSpec> wanted) {
        List<String> problems = new ArrayList<>();
        Plan plan;
        changes.lock();
        try {
            plan = plan(wanted, problems);
        } finally {
            changes.unlock();
        }
        // Open what is new or changed outside the lock: the control API (remove --force, list) goes on meanwhile.
        Map<String, OpenedDevice> opened = new LinkedHashMap<>();
        for (ExportSpec s : plan.toOpen.values()) {
            try {
                opened.put(s.exportName(), openDevice(s));
            } catch (ControlException e) {
                boolean changed = plan.previous.containsKey(s.exportName());
                problems.add(s.exportName() + ": " + e.getMessage() + (changed ? "; serving its previous entry still" : ""));
                if (changed) {
                    plan.kept++;
                }
            }
        }
        changes.lock();
        try {
            swap(plan, opened, problems);
        } finally {
            changes.unlock();
        }
        for (String p : problems) {
            CommandLoggers.serve().warn("config: {}", p);
        }
        return new Applied(plan.added, plan.removed, plan.replaced, plan.kept, List.copyOf(problems));
    }

    /** What {@link #apply} did: exports added, removed, replaced and left unchanged, and why entries could not be applied. */
    record Applied(int added, int removed, int replaced, int unchanged, List<String> problems) {
        /** One line: "1 added, 0 removed, 0 replaced, 2 unchanged[, N problem(s)]". */
        String summary() {
            return added + " added, " + removed + " removed, " + replaced + " replaced, " + unchanged + " unchanged"
                    + (problems.isEmpty() ? "" : ", " + problems.size() + " problem(s)");
        }
    }

    /** What a reload will do: the entries to open (new and changed), the exports to remove, counts. */
    private static final class Plan {
        /** New and changed entries, by export name. */
        final Map<String, ExportSpec> toOpen = new LinkedHashMap<>();
        /** Changed entries' current specs, by export name: the swap checks nothing changed them meanwhile. */
        final Map<String, ExportSpec> previous = new HashMap<>();
        final List<String> toRemove = new ArrayList<>();
        int added;
        int removed;
        int replaced;
        int kept;
    }

    private Plan plan(List<ExportSpec> wanted, List<String> problems) {
        Plan plan = new Plan();
        Map<String, ExportSpec> want = new LinkedHashMap<>();
        // Names whose new entry is unusable: the export of that name, if any, goes on as it was.
        Set<String> unusable = new HashSet<>();
        for (ExportSpec s : wanted) {
            try {
                ExportSpec v = s.validated();
                if (want.put(v.exportName(), v) != null) {
                    problems.add("'" + v.exportName() + "' is listed twice");
                }
            } catch (ControlException e) {
                problems.add(e.getMessage());
                // Every export the entry may mean goes on as it was: a vhost-user entry is named by its
                // socket, however spelt, even when its kind is what is wrong.
                for (String n : new String[] {s.name(), s.socket()}) {
                    if (n != null) {
                        unusable.add(n);
                        if (n.startsWith("/")) {
                            unusable.add(ExportSpec.sameSocketPath(n));
                        }
                    }
                }
            }
        }
        for (DaemonExport e : exports()) {
            if (!e.fromConfig) {
                continue;
            }
            String name = e.name();
            ExportSpec w = want.remove(name);
            if (w != null && w.equals(e.spec) || w == null && unusable.contains(name)) {
                plan.kept++;
            } else if (w == null) {
                plan.toRemove.add(name);
            } else {
                plan.toOpen.put(name, w);
                plan.previous.put(name, e.spec);
            }
        }
        for (ExportSpec s : want.values()) {
            DaemonExport existing = exports.get(s.exportName());
            if (existing != null && existing.spec.equals(s)) {
                // Added through the control API and now listed in the file as it is: the file's from now on.
                existing.fromConfig = true;
                plan.kept++;
            } else if (existing != null) {
                problems.add(s.exportName() + ": export '" + s.exportName() + "' exists already (added through the control API)");
            } else {
                plan.toOpen.put(s.exportName(), s);
            }
        }
        return plan;
    }

    /** Under the lock: removes what is gone, replaces the changed whose new device opened, adds the new. */
    private void swap(Plan plan, Map<String, OpenedDevice> opened, List<String> problems) {
        for (String name : plan.toRemove) {
            try {
                remove(name, true);
                plan.removed++;
            } catch (ControlException ex) {
                problems.add(ex.getMessage());
            }
        }
        for (Map.Entry<String, OpenedDevice> o : opened.entrySet()) {
            String name = o.getKey();
            ExportSpec spec = plan.toOpen.get(name);
            ExportSpec previous = plan.previous.get(name);
            if (previous != null) {
                DaemonExport current = exports.get(name);
                if (current == null || !current.spec.equals(previous)) {
                    o.getValue().close();
                    problems.add(name + ": changed or removed through the control API during the reload; left as it is");
                    continue;
                }
                try {
                    remove(name, true);
                } catch (ControlException ex) {
                    o.getValue().close();
                    problems.add(name + ": " + ex.getMessage() + "; serving its previous entry still");
                    plan.kept++;
                    continue;
                }
            }
            try {
                add(spec, true, o.getValue());
                if (previous != null) {
                    plan.replaced++;
                } else {
                    plan.added++;
                }
            } catch (ControlException ex) {
                problems.add(name + ": " + ex.getMessage());
                if (previous != null) {
                    // Served before and open now, yet it could not be served (its vhost-user socket,
                    // say): the export comes back as it was (its clients reconnect to the same device).
                    try {
                        add(previous, true);
                        plan.kept++;
                        problems.add(name + ": serving its previous entry again");
                    } catch (ControlException again) {
                        problems.add(name + ": its previous entry could not be served again either: " + again.getMessage());
                    }
                }
            }
        }
    }


    @Override
    public void close() {
        if (!nbd.stop(NbdServer.DRAIN_TIMEOUT)) {
            // A connection or load still running may use the exports' cache memory: leave it to the exit.
            return;
        }
        boolean allClosed = true;
        for (DaemonExport e : exports()) {
            allClosed &= e.close();
        }
        for (DaemonExport e : removedStillClosing) {
            allClosed &= e.deviceClosed(); // removed earlier, a load still running in its session
        }
        exports.clear();
        if (allClosed) {
            // Else a vhost-user load still runs in it: the cache's memory goes with the process.
            cache.close();
        }
    }
}
