package io.strata.registry.cache;

import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * A second Strata process for the cross-process cache tests, run in its own JVM with the test
 * class path. Modes:
 * <ul>
 *   <li>{@code read CACHE BOOTSTRAP BLOBS EXPECTED DELAY_MS SEED}: reads the whole flat device through
 *       a remote source over CACHE (blobs served from BLOBS, each fetch taking DELAY_MS), in 64 KiB
 *       pieces in an order shuffled by SEED (0: in order), checking every piece against EXPECTED;
 *       prints {@code progress N} after each piece and {@code done COUNTERS} at the end.</li>
 *   <li>{@code hold CACHE BOOTSTRAP BLOBS}: opens the device (every blob in use), prints
 *       {@code holding}, and keeps it open until its standard input ends.</li>
 * </ul>
 * Exit status 0 when every byte matched, 3 on a wrong byte, 1 on an error.
 */
public final class CacheChild {
    static final int PIECE = 64 << 10;

    private CacheChild() {
    }

    public static void main(String[] args) throws Exception {
        try {
            System.exit(run(args));
        } catch (Throwable t) {
            t.printStackTrace();
            System.out.println("error " + t);
            System.out.flush();
            System.exit(1);
        }
    }

    private static int run(String[] args) throws IOException {
        Path cache = Path.of(args[1]);
        Path bootstrap = Path.of(args[2]);
        FileBlobStore store = new FileBlobStore(Path.of(args[3]));
        RemoteBlobSource source = new RemoteBlobSource(new BlobCacheDirectory(cache, BlobCacheDirectory.UNBOUNDED), store,
                "child store", new FetchPolicy(FetchPolicy.MIN_MERGE_LIMIT, FetchPolicy.DEFAULT_MAX_GAP));
        switch (args[0]) {
            case "hold": {
                try (FlatDevice dev = FlatDevice.open(bootstrap, source, FlatDeviceOptions.defaults())) {
                    System.out.println("holding " + dev.size());
                    System.out.flush();
                    while (System.in.read() >= 0) {
                        // until the test closes our input
                    }
                }
                return 0;
            }
            case "read": {
                byte[] expected = Files.readAllBytes(Path.of(args[4]));
                store.delay(Long.parseLong(args[5]));
                long seed = Long.parseLong(args[6]);
                try (FlatDevice dev = FlatDevice.open(bootstrap, source, FlatDeviceOptions.defaults())) {
                    List<Integer> pieces = new ArrayList<>();
                    for (int at = 0; at < expected.length; at += PIECE) {
                        pieces.add(at);
                    }
                    if (seed != 0) {
                        Collections.shuffle(pieces, new Random(seed));
                    }
                    int done = 0;
                    for (int at : pieces) {
                        int n = Math.min(PIECE, expected.length - at);
                        ByteBuffer b = ByteBuffer.allocate(n);
                        dev.read(at, b);
                        if (!Arrays.equals(b.array(), 0, n, expected, at, at + n)) {
                            System.out.println("MISMATCH at " + at);
                            System.out.flush();
                            return 3;
                        }
                        System.out.println("progress " + ++done);
                        System.out.flush();
                    }
                }
                System.out.println("done " + source.counters());
                System.out.flush();
                return 0;
            }
            default:
                throw new IllegalArgumentException("unknown mode " + args[0]);
        }
    }
}
