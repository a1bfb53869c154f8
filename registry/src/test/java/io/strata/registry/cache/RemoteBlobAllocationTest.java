package io.strata.registry.cache;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.ChunkRanges;
import io.strata.core.image.ChunkInfo;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.HostTools;
import io.strata.core.testing.SyntheticImage;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A read of chunks already in the disk cache (what the chunk store does on every memory-cache miss
 * of a warm remote blob) allocates nothing: measured with HotSpot's per-thread allocation counter.
 */
class RemoteBlobAllocationTest {
    @TempDir
    Path tmp;

    @Test
    void readsOfCachedChunksAllocateNothing() throws Exception {
        var mx = ManagementFactory.getThreadMXBean();
        HostTools.require(mx instanceof com.sun.management.ThreadMXBean, "needs HotSpot's allocation counter");
        com.sun.management.ThreadMXBean hs = (com.sun.management.ThreadMXBean) mx;
        SyntheticImage.Written w = SyntheticImage.write(tmp.resolve("img"), List.of(
                SyntheticImage.uniformBlob(new Random(3), 16, 65536, Compression.ZSTD, DigestAlgorithm.BLAKE3)));
        List<ChunkInfo> chunks = w.chunks().get(0);
        long[] o = new long[chunks.size()];
        int[] l = new int[chunks.size()];
        for (int i = 0; i < o.length; i++) {
            o[i] = chunks.get(i).compressedOffset();
            l[i] = (int) chunks.get(i).compressedSize();
        }
        RemoteBlobSource source = new RemoteBlobSource(new BlobCacheDirectory(tmp.resolve("cache"), BlobCacheDirectory.UNBOUNDED),
                new FileBlobStore(w.blobDir()), "store");
        try (RemoteBlob rb = source.open(w.blobIds().get(0), ChunkRanges.of(o, l))) {
            ByteBuffer dst = ByteBuffer.allocateDirect(65536);
            for (int round = 0; round < 200; round++) { // fills the cache, then warms the JIT
                for (int i = 0; i < o.length; i++) {
                    dst.clear().limit(l[i]);
                    rb.readFully(dst, o[i]);
                }
            }
            long fetches = source.counters().fetchRequests();
            long tid = Thread.currentThread().getId();
            long before = hs.getThreadAllocatedBytes(tid);
            int requests = 0;
            for (int round = 0; round < 100; round++) {
                for (int i = 0; i < o.length; i++) {
                    dst.clear().limit(l[i]);
                    rb.readFully(dst, o[i]);
                    requests++;
                }
            }
            long allocated = hs.getThreadAllocatedBytes(tid) - before;
            assertEquals(fetches, source.counters().fetchRequests(), "all reads were cache hits");
            assertTrue(allocated < requests, "allocated " + allocated + " bytes over " + requests + " reads");
        }
    }
}
