package io.strata.core.device;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.buffer.NativeBuffer;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.HostTools;
import io.strata.core.testing.SyntheticImage;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Resolving reads that hit the cache (and stored chunks served from the file) allocates nothing per
 * request: measured with HotSpot's per-thread allocation counter over many requests.
 */
class HotPathAllocationTest {
    @TempDir
    Path tmp;

    /** A sink that does what a transport does, minus the I/O: touches each segment, keeps nothing. */
    static final class CountingSink implements SegmentSink {
        long bytes;

        @Override
        public void file(io.strata.core.os.OpenFile file, long position, long length) {
            bytes += length;
        }

        @Override
        public void memory(NativeBuffer buffer, int offset, int length) {
            bytes += buffer.view().get(offset) + length;
        }

        @Override
        public void zeros(long length) {
            bytes += length;
        }
    }

    @Test
    void cacheHitsAllocateNothing() throws Exception {
        var mx = ManagementFactory.getThreadMXBean();
        HostTools.require(mx instanceof com.sun.management.ThreadMXBean, "needs HotSpot's allocation counter");
        com.sun.management.ThreadMXBean hs = (com.sun.management.ThreadMXBean) mx;
        Random r = new Random(9);
        SyntheticImage.Written w = SyntheticImage.write(tmp, List.of(
                SyntheticImage.uniformBlob(r, 8, 65536, Compression.ZSTD, DigestAlgorithm.SHA256),
                SyntheticImage.uniformBlob(r, 8, 65536, Compression.NONE, DigestAlgorithm.SHA256)));
        try (FlatDevice dev = FlatDevice.open(w.bootstrap(), new LocalBlobDirectory(w.blobDir()),
                FlatDeviceOptions.defaults().withCacheBytes(32 * 65536))) {
            CountingSink sink = new CountingSink();
            long[] offsets = new long[1024];
            for (int i = 0; i < offsets.length; i++) {
                offsets[i] = (long) (r.nextDouble() * (dev.size() - 65536)) & ~4095L;
            }
            for (int round = 0; round < 20; round++) { // warm the cache and let the JIT settle
                for (long o : offsets) {
                    dev.resolve(o, 65536, sink);
                }
            }
            long tid = Thread.currentThread().getId();
            long before = hs.getThreadAllocatedBytes(tid);
            int requests = 0;
            for (int round = 0; round < 10; round++) {
                for (long o : offsets) {
                    dev.resolve(o, 65536, sink);
                    requests++;
                }
            }
            long allocated = hs.getThreadAllocatedBytes(tid) - before;
            assertTrue(allocated < requests, "allocated " + allocated + " bytes over " + requests + " requests");
        }
    }
}
