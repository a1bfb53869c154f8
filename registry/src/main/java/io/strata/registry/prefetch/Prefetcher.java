package io.strata.registry.prefetch;

import io.strata.core.blob.ChunkRanges;
import io.strata.core.image.BlobTableEntry;
import io.strata.core.image.PrefetchPlan;
import io.strata.core.image.RafsImage;
import io.strata.registry.cache.RemoteBlob;
import io.strata.registry.cache.RemoteBlobSource;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fetches a remote image's chunks into the persistent cache in the background, behind the reads.
 *
 * <p><b>Entry point</b> (for the serve commands): open the device first (its {@code ChunkStore}
 * opens the blobs, which creates their cache files), then
 * <pre>
 *   Prefetcher p = Prefetcher.start(image, remoteBlobSource, PrefetchMode.parse(option), PrefetchOptions.defaults());
 *   ... p.progress() for the metrics line ...
 *   p.close();   // before the device, the source and the cache directory
 * </pre>
 * {@code start} returns at once; planning and fetching run on daemon threads named
 * {@code strata-prefetch-N}.
 *
 * <p><b>What it fetches.</b> {@link PrefetchMode#TABLE}: the chunks the image's RAFS prefetch table
 * names ({@link PrefetchPlan}: table order, file order). {@link PrefetchMode#ALL}: those first, then
 * every other chunk of every blob in blob order, so that the whole image ends up in the cache (the
 * next open of a blob then serves it as a local file, zero-copy paths included) and the device keeps
 * working without the registry. The wanted chunks are grouped into segments, one request each: per
 * blob in blob order, merged only across gaps of at most {@link #GAP} between two wanted chunks
 * and up to the merge limit (a table's scattered files are not padded with unwanted neighbours,
 * which cost bytes and time), issued in the order of their first wanted chunk. Each segment goes through
 * {@link RemoteBlob#fetchSegment}, storing the compressed bytes as they came; nothing is
 * decompressed here. Digests are checked when a read uses a chunk (the core's {@code ChunkStore});
 * a bad chunk is then dropped from the cache ({@code Blob.discard}) and fetched again by the next read.
 *
 * <p><b>Reads and prefetch share the fetches.</b> The table's segments are registered with each
 * blob ({@link RemoteBlob#usePlan}): a read that misses a chunk of a segment not yet fetched takes
 * that segment at once (ahead of the queue); a read elsewhere (the rest of {@code all} included)
 * keeps its readahead. A read whose chunk a prefetch request is bringing waits for that request
 * instead of sending its own (single flight, as between reads).
 *
 * <p><b>Reads go first.</b> A prefetch keeps at most {@link PrefetchOptions#slots} requests in flight
 * (default 16, the registry client's default concurrency bound, whose semaphore is fair: a read's
 * request waits at most for one request on the wire to end, never for queued prefetch), and before
 * each request it waits while {@link PrefetchOptions#yieldAt} or more on-demand reads are fetching
 * for themselves ({@link RemoteBlobSource#demandFetches}; a read waiting for a prefetch request does
 * not count: holding the prefetch back would only delay it).
 *
 * <p><b>Progress</b>: a log line each time a blob's planned bytes pass another 10 %
 * ({@code prefetch (all): blob 3f2a... 40 % (12.0/30.1 MiB)}) and one at the end; counters in
 * {@link #progress()} for the metrics line. After {@link PrefetchOptions#maxConsecutiveFailures}
 * failed requests in a row (each already retried by the registry client) it gives up with one log
 * line; reads keep fetching on demand. {@link #close} stops it between requests (a request in
 * flight is finished, never interrupted: an interrupt would close the cache's shared file channel).
 */
public final class Prefetcher implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Prefetcher.class);
    private static final double MIB = 1024.0 * 1024.0;
    /** How long {@link #close} waits for the request in flight (the registry client's read deadline bounds it). */
    private static final Duration CLOSE_WAIT = Duration.ofSeconds(90);

    /**
     * The largest gap between two wanted chunks that one request bridges. A round trip costs what a
     * link moves meanwhile (20 ms at 50 MiB/s: 1 MiB), so bridging 128 KiB is cheaper than a second
     * request on any link slower than 6.4 MiB/s per millisecond of round trip; the bytes it adds are
     * bounded by the gap per request (measured on a recorded table of 3,002 chunks in 268
     * directories: 8 KiB gaps 275 requests of 1.01x the wanted bytes, 128 KiB gaps 170 of 1.20x).
     */
    static final int GAP = 128 << 10;

    /** Wanted chunks of one blob (ascending indexes) fetched with one request. */
    private record Segment(int blob, int[] chunks) {
    }

    /** The image; set by the planner first when started from a bootstrap path (Thread.start orders it for the workers). */
    private RafsImage image;
    /** The image's chunk tables; built by the planner when not given. */
    private io.strata.core.chunk.ChunkTable[] tables;
    /** The bytes {@link #image} was parsed from, if the caller had them; null once planned (set by the constructor, read by the planner after Thread.start). */
    private java.nio.ByteBuffer bootstrapBytes;
    /** The bootstrap to open on the planner thread, or null when the image was given. */
    private final java.nio.file.Path bootstrap;
    private final RemoteBlobSource source;
    private final PrefetchMode mode;
    private final PrefetchOptions options;
    private final PrefetchProgress progress;
    private final CountDownLatch finished = new CountDownLatch(1);
    private final AtomicInteger nextSegment = new AtomicInteger();
    private final AtomicInteger workersLeft = new AtomicInteger();
    private final AtomicInteger consecutiveFailures = new AtomicInteger();
    private volatile boolean stopping;
    private volatile boolean failed;
    private long startNanos;
    // Set by the planner before the workers start (Thread.start orders them).
    private RemoteBlob[] blobs = new RemoteBlob[0];
    private ChunkRanges[] ranges;
    private List<Segment> segments = List.of();
    private long[] blobPlanned;
    private AtomicLongArray blobDone;
    private AtomicIntegerArray blobDecile;

    private Prefetcher(RafsImage image, java.nio.ByteBuffer bootstrapBytes, io.strata.core.chunk.ChunkTable[] tables,
            java.nio.file.Path bootstrap, RemoteBlobSource source, PrefetchMode mode, PrefetchOptions options) {
        this.image = image;
        this.bootstrapBytes = bootstrapBytes;
        this.tables = tables;
        this.bootstrap = bootstrap;
        this.source = source;
        this.mode = mode;
        this.options = options;
        this.progress = new PrefetchProgress(mode);
    }

    /**
     * Starts prefetching {@code image}'s blobs from {@code source} in the background and returns at
     * once. {@link PrefetchMode#NONE} (or an image without blobs) starts nothing.
     */
    public static Prefetcher start(RafsImage image, RemoteBlobSource source, PrefetchMode mode, PrefetchOptions options) {
        return start(new Prefetcher(image, null, null, null, source, mode, options));
    }

    /**
     * As {@link #start(RafsImage, RemoteBlobSource, PrefetchMode, PrefetchOptions)}, with the bytes the
     * image was parsed from ({@code RafsImage.read}) and its blobs' chunk tables already built
     * ({@code ChunkTable.buildAll(image)}): a server that opens its device from the same image and
     * tables parses the bootstrap once for both, and the plan reads its inodes from those bytes
     * instead of the file (they are dropped once planned).
     */
    public static Prefetcher start(RafsImage image, java.nio.ByteBuffer bootstrapBytes, io.strata.core.chunk.ChunkTable[] tables,
            RemoteBlobSource source, PrefetchMode mode, PrefetchOptions options) {
        return start(new Prefetcher(image, bootstrapBytes, tables, null, source, mode, options));
    }

    /**
     * As {@link #start(RafsImage, RemoteBlobSource, PrefetchMode, PrefetchOptions)}, opening the
     * bootstrap on the prefetch thread: a server starts it before it opens its device, and the
     * parse stays off the path to the first client (a bootstrap that does not open is the
     * device's error to report; here it only means no prefetch).
     */
    public static Prefetcher start(java.nio.file.Path bootstrap, RemoteBlobSource source, PrefetchMode mode, PrefetchOptions options) {
        return start(new Prefetcher(null, null, null, bootstrap, source, mode, options));
    }

    private static Prefetcher start(Prefetcher p) {
        if (p.mode == PrefetchMode.NONE || (p.image != null && p.image.blobs().isEmpty())) {
            p.progress.state = p.mode == PrefetchMode.NONE ? PrefetchProgress.State.OFF : PrefetchProgress.State.DONE;
            p.finished.countDown();
            return p;
        }
        p.progress.state = PrefetchProgress.State.RUNNING;
        p.startNanos = System.nanoTime();
        p.workersLeft.set(p.options.slots());
        Thread planner = new Thread(p::planThenWork, "strata-prefetch-1");
        planner.setDaemon(true);
        planner.start();
        return p;
    }

    public PrefetchProgress progress() {
        return progress;
    }

    /** Waits until the prefetch has finished (done, failed or stopped); false on timeout. */
    public boolean awaitFinished(Duration timeout) throws InterruptedException {
        return finished.await(timeout.toNanos(), TimeUnit.NANOSECONDS);
    }

    /** The first worker plans (opening the blobs may ask the registry for a size), then starts the others. */
    private void planThenWork() {
        try {
            plan();
        } catch (IOException | RuntimeException e) {
            LOG.warn("prefetch ({}): cannot plan: {}; reads fetch on demand", mode.cliName(), oneLine(e));
            failed = true;
            stopping = true;
        }
        if (!stopping) {
            long chunks = progress.plannedChunks();
            LOG.info("prefetch ({}): {} chunk(s), {} MiB in {} blob(s), {} slot(s)", mode.cliName(), chunks,
                    mib(progress.plannedBytes()), blobs.length, options.slots());
            for (int k = 2; k <= options.slots(); k++) {
                Thread t = new Thread(this::work, "strata-prefetch-" + k);
                t.setDaemon(true);
                t.start();
            }
        } else {
            for (int k = 2; k <= options.slots(); k++) {
                workerDone();
            }
        }
        work();
    }

    private void plan() throws IOException {
        if (image == null) {
            image = RafsImage.open(bootstrap);
        }
        int n = image.blobs().size();
        if (tables == null) {
            tables = io.strata.core.chunk.ChunkTable.buildAll(image);
        }
        blobs = new RemoteBlob[n];
        ranges = new ChunkRanges[n];
        blobPlanned = new long[n];
        blobDone = new AtomicLongArray(n);
        blobDecile = new AtomicIntegerArray(n);
        for (int b = 0; b < n && !stopping; b++) {
            blobs[b] = source.open(image.blobs().get(b).blobId(), tables[b].compressedRanges());
            ranges[b] = blobs[b].cacheFile().ranges();
        }
        if (stopping) {
            return;
        }
        boolean[][] planned = new boolean[n][];
        for (int b = 0; b < n; b++) {
            planned[b] = new boolean[ranges[b].count()];
        }
        // Tasks in order: (blob, chunk) pairs, the table's first.
        List<long[]> tasks = new ArrayList<>();
        PrefetchPlan plan = bootstrapBytes != null ? PrefetchPlan.of(image, bootstrapBytes, tables, false) : PrefetchPlan.of(image, tables, false);
        bootstrapBytes = null;
        for (PrefetchPlan.Chunk c : plan.chunks()) {
            int i = indexOf(ranges[c.blob()], c.compressedOffset(), c.compressedSize());
            if (i >= 0 && !planned[c.blob()][i]) {
                planned[c.blob()][i] = true;
                tasks.add(new long[] {c.blob(), i});
            }
        }
        int fromTable = tasks.size();
        if (mode == PrefetchMode.ALL) {
            for (int b = 0; b < n; b++) {
                for (int i = 0; i < ranges[b].count(); i++) {
                    if (!planned[b][i] && ranges[b].length(i) > 0) {
                        planned[b][i] = true;
                        tasks.add(new long[] {b, i});
                    }
                }
            }
        }
        // The table's segments, then the rest's (`all`), grouped apart: only the table's are given to
        // the reads (a read missing a listed file's chunk takes its segment); a read elsewhere keeps
        // its readahead, which the fill of the whole blob must not replace by 1 MiB pieces without it.
        List<Segment> tableSegments = group(tasks.subList(0, fromTable));
        segments = new ArrayList<>(tableSegments);
        segments.addAll(group(tasks.subList(fromTable, tasks.size())));
        List<List<int[]>> perBlob = new ArrayList<>();
        for (int b = 0; b < n; b++) {
            perBlob.add(new ArrayList<>());
        }
        for (Segment seg : tableSegments) {
            perBlob.get(seg.blob()).add(seg.chunks());
        }
        for (int b = 0; b < n; b++) {
            blobs[b].usePlan(new io.strata.registry.cache.FetchPlan(ranges[b].count(), perBlob.get(b)));
        }
        for (long[] t : tasks) {
            int len = ranges[(int) t[0]].length((int) t[1]);
            blobPlanned[(int) t[0]] += len;
            progress.plannedChunks.increment();
            progress.plannedBytes.add(len);
        }
    }

    /** The index in {@code r} of the chunk at {@code offset} with {@code length}, or -1. */
    static int indexOf(ChunkRanges r, long offset, int length) {
        for (int i = r.firstEndingAfter(offset); i < r.count() && r.offset(i) <= offset; i++) {
            if (r.offset(i) == offset && r.length(i) == length) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Groups the tasks (in the order they are wanted) into segments, one request each: per blob, the
     * wanted chunks in blob order, a chunk joining the segment before it when the gap between them
     * is at most the policy's gap and the segment stays within the merge limit; so a request carries
     * the wanted chunks and at most small gaps, never unwanted neighbours. Segments are issued in the
     * order of their first wanted chunk (the table's order: the order the application reads).
     */
    private List<Segment> group(List<long[]> tasks) {
        int limit = source.policy().mergeLimit();
        int gap = Math.min(GAP, limit / 4);
        int[][] rank = new int[ranges.length][];
        for (int b = 0; b < ranges.length; b++) {
            rank[b] = new int[ranges[b].count()];
            Arrays.fill(rank[b], -1);
        }
        for (int k = 0; k < tasks.size(); k++) {
            rank[(int) tasks.get(k)[0]][(int) tasks.get(k)[1]] = k;
        }
        List<Segment> out = new ArrayList<>();
        List<Integer> order = new ArrayList<>();
        for (int b = 0; b < ranges.length; b++) {
            ChunkRanges r = ranges[b];
            int[] chunks = new int[8];
            int count = 0;
            int first = Integer.MAX_VALUE;
            long start = 0;
            long end = 0;
            for (int i = 0; i <= r.count(); i++) {
                boolean wanted = i < r.count() && rank[b][i] >= 0;
                if (!wanted && i < r.count()) {
                    continue;
                }
                if (count > 0 && (!wanted || r.offset(i) - end > gap || Math.max(end, r.end(i)) - start > limit)) {
                    out.add(new Segment(b, Arrays.copyOf(chunks, count)));
                    order.add(first);
                    count = 0;
                    first = Integer.MAX_VALUE;
                }
                if (!wanted) {
                    break;
                }
                if (count == 0) {
                    start = r.offset(i);
                    end = r.end(i);
                }
                if (count == chunks.length) {
                    chunks = Arrays.copyOf(chunks, count * 2);
                }
                chunks[count++] = i;
                end = Math.max(end, r.end(i));
                first = Math.min(first, rank[b][i]);
            }
        }
        Integer[] idx = new Integer[out.size()];
        for (int k = 0; k < idx.length; k++) {
            idx[k] = k;
        }
        Arrays.sort(idx, (x, y) -> Integer.compare(order.get(x), order.get(y)));
        List<Segment> sorted = new ArrayList<>(idx.length);
        for (Integer k : idx) {
            sorted.add(out.get(k));
        }
        return sorted;
    }

    private void work() {
        try {
            while (!stopping) {
                int s = nextSegment.getAndIncrement();
                if (s >= segments.size()) {
                    break;
                }
                fetch(segments.get(s));
            }
        } catch (RuntimeException e) {
            LOG.warn("prefetch ({}): stopped: {}", mode.cliName(), oneLine(e));
            failed = true;
            stopping = true;
        } finally {
            workerDone();
        }
    }

    private void fetch(Segment seg) {
        RemoteBlob blob = blobs[seg.blob()];
        ChunkRanges r = ranges[seg.blob()];
        yieldToReads();
        if (stopping) {
            return;
        }
        try {
            if (blob.fetchSegment(seg.chunks())) {
                progress.requests.increment();
            }
            consecutiveFailures.set(0);
        } catch (IOException e) {
            progress.failures.increment();
            int inARow = consecutiveFailures.incrementAndGet();
            LOG.warn("prefetch ({}): blob {} chunks at bytes {}-{}: {}", mode.cliName(), blob.id(), r.offset(seg.chunks()[0]),
                    r.end(seg.chunks()[seg.chunks().length - 1]) - 1, oneLine(e));
            if (inARow >= options.maxConsecutiveFailures()) {
                LOG.warn("prefetch ({}): gave up after {} failed requests in a row; reads still fetch on demand",
                        mode.cliName(), inARow);
                failed = true;
                stopping = true;
            }
            return;
        }
        // Chunks a read (or another process) was fetching count as done: that fetch brings them.
        for (int i : seg.chunks()) {
            chunkDone(seg.blob(), r.length(i));
        }
    }

    /** Holds back while reads are fetching: they go first. */
    private void yieldToReads() {
        boolean counted = false;
        while (!stopping && source.demandFetches() >= options.yieldAt()) {
            if (!counted) {
                progress.yields.increment();
                counted = true;
            }
            LockSupport.parkNanos(options.yieldPoll().toNanos());
        }
    }

    private void chunkDone(int blob, int bytes) {
        progress.doneChunks.increment();
        progress.doneBytes.add(bytes);
        long done = blobDone.addAndGet(blob, bytes);
        long planned = blobPlanned[blob];
        int decile = planned == 0 ? 10 : (int) (done * 10 / planned);
        int logged = blobDecile.get(blob);
        if (decile > logged && blobDecile.compareAndSet(blob, logged, decile)) {
            LOG.info("prefetch ({}): blob {} {} % ({}/{} MiB)", mode.cliName(), shortId(image.blobs().get(blob)),
                    decile * 10, mib(done), mib(planned));
        }
    }

    private void workerDone() {
        if (workersLeft.decrementAndGet() != 0) {
            return;
        }
        for (RemoteBlob b : blobs) {
            if (b != null) {
                try {
                    b.close();
                } catch (IOException e) {
                    LOG.warn("prefetch: closing blob {}: {}", b.id(), oneLine(e));
                }
            }
        }
        boolean complete = !failed && nextSegment.get() >= segments.size() && progress.doneChunks() == progress.plannedChunks();
        progress.state = complete ? PrefetchProgress.State.DONE
                : failed ? PrefetchProgress.State.FAILED : PrefetchProgress.State.STOPPED;
        double secs = (System.nanoTime() - startNanos) / 1e9;
        LOG.info(String.format(Locale.ROOT, "prefetch (%s): %s: %d/%d chunk(s), %s/%s MiB cached in %.1f s; %d request(s),"
                        + " held back %d time(s) for reads, %d failure(s)", mode.cliName(), progress.state.name().toLowerCase(Locale.ROOT),
                progress.doneChunks(), progress.plannedChunks(), mib(progress.doneBytes()), mib(progress.plannedBytes()), secs,
                progress.requests(), progress.yields(), progress.failures()));
        finished.countDown();
    }

    /**
     * Stops prefetching: no new request starts; waits for the requests in flight (bounded by the
     * registry client's deadline) so that the blobs are released before the caller closes the source.
     */
    @Override
    public void close() {
        stopping = true;
        try {
            if (!finished.await(CLOSE_WAIT.toNanos(), TimeUnit.NANOSECONDS)) {
                LOG.warn("prefetch ({}): a request is still in flight after {} s; left to finish on its own",
                        mode.cliName(), CLOSE_WAIT.toSeconds());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static String shortId(BlobTableEntry b) {
        String id = b.blobId();
        return id.length() > 12 ? id.substring(0, 12) : id;
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f", bytes / MIB);
    }

    private static String oneLine(Throwable e) {
        String m = e.getMessage() == null ? e.toString() : e.getMessage();
        return m.replace('\n', ' ').replace('\r', ' ');
    }

    @Override
    public String toString() {
        return progress.toString();
    }
}
