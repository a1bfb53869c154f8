package io.strata.cli.metrics;

import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import io.strata.core.chunk.CacheStats;
import io.strata.core.chunk.LoadStats;
import io.strata.core.device.BlockDevice;
import io.strata.core.metrics.ErrorKind;
import io.strata.core.metrics.ExportCounters;
import io.strata.core.metrics.LatencyHistogram;
import io.strata.core.metrics.RequestType;
import io.strata.registry.RegistryClient;
import io.strata.registry.RegistryMetrics;
import io.strata.registry.cache.CacheCounters;
import io.strata.registry.prefetch.PrefetchProgress;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * Strata's own Prometheus series, read from the plain counters of the transports, the core and the
 * registry client when Prometheus scrapes (a {@link MultiCollector}): serving pays nothing for them
 * but its counters' increments. What is reported is registered at run time and can be removed again,
 * so a daemon whose exports come and go shows exactly the ones it serves:
 *
 * <ul>
 *   <li>{@link #addExport}: an export on a transport (labels {@code export}, {@code transport}):
 *       requests, bytes and latency by {@code type}, errors by {@code kind}, in-flight requests,
 *       connections (NBD) or sessions (vhost-user).</li>
 *   <li>{@link #addDevice}: the device behind an export (label {@code export}): its chunk cache and
 *       where chunk loads spend their time (reading, decompressing, checking digests).</li>
 *   <li>{@link #addRemoteImage}: an image served by reference (label {@code export}): its disk
 *       cache's hits and misses, what it fetched, its prefetch's progress.</li>
 *   <li>{@link #addRegistryClient}: per registry (label {@code registry}) the requests, bytes,
 *       retries, errors and request latency of the one registry client.</li>
 *   <li>{@link #addNbdServer}: the NBD server's connections, handshakes included, and those refused
 *       at {@code --max-connections}.</li>
 * </ul>
 * And always {@code strata_build_info{version}}.
 *
 * Each returns a {@link MetricsRegistration}; closing it removes those series. A name registered
 * twice for the same thing is refused (two sources would make one series ambiguous).
 */
public final class ServedMetrics implements MultiCollector {
    /** A registered thing, adding its data points to a scrape. */
    interface Source {
        void collect(Families families);
    }

    private final Map<String, Source> sources = new ConcurrentHashMap<>();

    /**
     * Reports an export's request counters under its name and transport ({@code "nbd"},
     * {@code "vhost-user"}) until the registration is closed.
     */
    public MetricsRegistration addExport(String export, String transport, ExportCounters counters) {
        Labels labels = Labels.of("export", export, "transport", transport);
        return add("export\0" + export + "\0" + transport, f -> collectExport(f, labels, counters));
    }

    /** Reports the chunk cache and chunk-load times of the device served under {@code export}. */
    public MetricsRegistration addDevice(String export, BlockDevice device) {
        Labels labels = Labels.of("export", export);
        return add("device\0" + export, f -> collectDevice(f, labels, device));
    }

    /** Reports the disk cache and prefetch of an image served by reference as {@code export}; {@code prefetch} may be null. */
    public MetricsRegistration addRemoteImage(String export, CacheCounters disk, PrefetchProgress prefetch) {
        Labels labels = Labels.of("export", export);
        return add("remote\0" + export, f -> collectRemote(f, labels, disk, prefetch));
    }

    /** Reports every registry the client talked to; the client may not exist yet (null), then nothing is reported. */
    public MetricsRegistration addRegistryClient(Supplier<RegistryClient> client) {
        return add("registry-client", f -> {
            RegistryClient c = client.get();
            if (c != null) {
                for (RegistryMetrics m : c.metrics().values()) {
                    collectRegistry(f, m);
                }
            }
        });
    }

    /** Reports the NBD server's own counters (one server per process). */
    public MetricsRegistration addNbdServer(io.strata.nbd.ServerMetrics server) {
        return add("nbd-server", f -> {
            io.strata.nbd.ServerMetrics.Snapshot s = server.snapshot();
            f.gauge("strata_nbd_server_connections_open", "NBD connections open, those still negotiating included.", Labels.EMPTY,
                    s.connectionsOpen());
            f.counter("strata_nbd_server_connections_refused", "NBD connections closed at once because --max-connections were open.",
                    Labels.EMPTY, s.refused());
        });
    }

    /** The version of the running Strata, from the cli jar's manifest. */
    private static final String VERSION = java.util.Objects.requireNonNullElse(
            ServedMetrics.class.getPackage().getImplementationVersion(), "unknown");

    MetricsRegistration add(String key, Source source) {
        if (sources.putIfAbsent(key, source) != null) {
            throw new IllegalArgumentException("metrics for " + key.replace('\0', ' ') + " are registered already");
        }
        return () -> sources.remove(key, source);
    }

    @Override
    public MetricSnapshots collect() {
        Families f = new Families();
        f.gauge("strata_build_info", "Always 1; the label says which Strata version runs.", Labels.of("version", VERSION), 1);
        for (Source s : sources.values()) {
            s.collect(f);
        }
        return new MetricSnapshots(f.build());
    }

    private static void collectExport(Families f, Labels labels, ExportCounters c) {
        double[] bounds = new double[LatencyHistogram.buckets()];
        for (int i = 0; i < bounds.length; i++) {
            bounds[i] = LatencyHistogram.upperBoundSeconds(i);
        }
        for (RequestType type : RequestType.values()) {
            long n = c.requests(type);
            if (n == 0 && type != RequestType.READ) {
                // A type's series start with its first request: a histogram per type and export that no
                // client uses (NBD has no GET_ID, vhost-user no CACHE) would only make every scrape larger.
                continue;
            }
            Labels typed = labels.add("type", type.label());
            f.counter("strata_requests", "Requests answered (with or without error), by type.", typed, n);
            f.counter("strata_request_bytes", "Bytes moved by requests answered without error: data read (read, get_id) or loaded (NBD cache).",
                    typed, c.bytes(type));
            LatencyHistogram h = c.latency(type);
            long[] counts = new long[LatencyHistogram.buckets()];
            for (int i = 0; i < counts.length; i++) {
                counts[i] = h.bucketCount(i);
            }
            f.histogram("strata_request_duration_seconds", "Time from taking a request off the connection or ring to answering it.",
                    typed, bounds, counts, h.sumNanos() / 1e9);
        }
        for (ErrorKind kind : ErrorKind.values()) {
            f.counter("strata_request_errors", "Requests answered with an error, by why: corrupt_chunk and io are EIO.",
                    labels.add("kind", kind.label()), c.errors(kind));
        }
        f.gauge("strata_requests_in_flight", "Requests received and not answered yet.", labels, c.inFlight());
        f.gauge("strata_connections_open", "Client connections (NBD) or front-end sessions (vhost-user) open now.", labels,
                c.connectionsOpen());
        f.counter("strata_connections", "Client connections (NBD) or front-end sessions (vhost-user) accepted.", labels,
                c.connectionsTotal());
    }

    private static void collectRemote(Families f, Labels labels, CacheCounters disk, PrefetchProgress prefetch) {
        f.counter("strata_disk_cache_hits", "Chunk reads of a remote image served from the disk cache (--cache-dir).", labels, disk.hits());
        f.counter("strata_disk_cache_misses", "Chunks of a remote image fetched from the registry.", labels, disk.misses());
        f.counter("strata_disk_cache_fetched_bytes", "Compressed bytes a remote image fetched from the registry.", labels, disk.bytesFetched());
        f.counter("strata_disk_cache_fetch_requests", "Range requests a remote image sent for its chunks.", labels, disk.fetchRequests());
        f.counter("strata_disk_cache_discarded_chunks", "Cached chunks dropped because they did not decompress or verify.", labels,
                disk.discarded());
        if (prefetch == null) {
            return;
        }
        f.gauge("strata_prefetch_planned_bytes", "Compressed bytes the prefetch (--prefetch) means to cache.", labels, prefetch.plannedBytes());
        f.gauge("strata_prefetch_done_bytes", "Compressed bytes of the prefetch plan in the cache.", labels, prefetch.doneBytes());
        f.gauge("strata_prefetch_planned_chunks", "Chunks the prefetch means to cache.", labels, prefetch.plannedChunks());
        f.gauge("strata_prefetch_done_chunks", "Chunks of the prefetch plan in the cache.", labels, prefetch.doneChunks());
        f.counter("strata_prefetch_requests", "Requests the prefetch sent.", labels, prefetch.requests());
        f.counter("strata_prefetch_yields", "Times the prefetch held back because reads were fetching.", labels, prefetch.yields());
        f.counter("strata_prefetch_failures", "Prefetch requests that failed.", labels, prefetch.failures());
        for (PrefetchProgress.State state : PrefetchProgress.State.values()) {
            f.gauge("strata_prefetch_state", "1 for the prefetch's state (off, running, done, stopped, failed), 0 for the others.",
                    labels.add("state", state.name().toLowerCase(java.util.Locale.ROOT)), prefetch.state() == state ? 1 : 0);
        }
    }

    /** Registry latency in coarser buckets than RegistryMetrics keeps: every 4th bound, a factor 2 apart from 50 us. */
    private static final int REGISTRY_BUCKET_GROUP = 4;

    private static void collectRegistry(Families f, RegistryMetrics m) {
        Labels labels = Labels.of("registry", m.registry());
        f.counter("strata_registry_requests", "HTTP requests sent to the registry (every try).", labels, m.requests());
        f.counter("strata_registry_received_bytes", "Bytes of response bodies received from the registry.", labels, m.bytes());
        f.counter("strata_registry_retries", "Registry requests tried again.", labels, m.retries());
        f.counter("strata_registry_errors", "Failed registry tries and operations.", labels, m.errors());
        int n = RegistryMetrics.latencyBuckets();
        int groups = (n - 1 + REGISTRY_BUCKET_GROUP - 1) / REGISTRY_BUCKET_GROUP + 1;
        double[] bounds = new double[groups];
        long[] counts = new long[groups];
        // Group g covers fine buckets up to index REGISTRY_BUCKET_GROUP * g (its upper bound); the last group, the rest (+Inf).
        int fine = 0;
        for (int g = 0; g < groups; g++) {
            int last = g == groups - 1 ? n - 1 : Math.min(n - 2, REGISTRY_BUCKET_GROUP * g);
            bounds[g] = g == groups - 1 ? Double.POSITIVE_INFINITY : RegistryMetrics.latencyUpperBoundSeconds(last);
            for (; fine <= last; fine++) {
                counts[g] += m.latencyCount(fine);
            }
        }
        f.histogram("strata_registry_request_duration_seconds", "Registry request latency.", labels, bounds, counts,
                m.latencySumNanos() / 1e9);
    }

    private static void collectDevice(Families f, Labels labels, BlockDevice device) {
        CacheStats s = device.cacheStats();
        f.counter("strata_chunk_cache_hits", "Chunk reads that found the chunk in the memory cache.", labels, s.hits());
        f.counter("strata_chunk_cache_misses", "Chunk reads that loaded the chunk (read, decompress, check its digest).", labels, s.misses());
        f.counter("strata_chunk_cache_shared_loads", "Chunk reads that waited for another reader's load of the same chunk.", labels, s.waits());
        f.counter("strata_chunk_cache_evictions", "Chunks evicted from the memory cache to make room.", labels, s.evictions());
        f.counter("strata_chunk_cache_loaded_bytes", "Uncompressed bytes produced by chunk loads.", labels, s.bytesDecompressed());
        f.gauge("strata_chunk_cache_used_bytes", "Memory cache slots in use, in bytes.", labels, s.residentBytes());
        f.gauge("strata_chunk_cache_capacity_bytes", "The memory cache's bound (--cache-size), in bytes.", labels, s.capacityBytes());
        LoadStats l = device.loadStats();
        f.counter("strata_chunk_loads", "Chunk loads (memory cache misses) started.", labels, l.loads());
        f.counter("strata_chunk_read_seconds", "Time chunk loads spent reading compressed bytes (a remote fetch included).", labels,
                l.readNanos() / 1e9);
        f.counter("strata_chunk_decompress_seconds", "Time chunk loads spent decompressing.", labels, l.decompressNanos() / 1e9);
        f.counter("strata_chunk_digest_seconds", "Time chunk loads spent checking digests.", labels, l.digestNanos() / 1e9);
        f.counter("strata_chunk_corrupt", "Chunk loads that failed to decompress or verify (their reads got EIO).", labels, l.corrupt());
    }
}
