package io.strata.qemu;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Reads a running vhost-user back-end's inflight region from outside: the memfd it shares with QEMU
 * (VHOST_USER_GET_INFLIGHT_FD), opened through {@code /proc/PID/fd/N}. The layout is the split-ring
 * one of QEMU's docs/interop/vhost-user.rst, "Inflight I/O tracking", as libvhost-user lays it out:
 * per queue a 16-byte header {u64 features, u16 version, u16 desc_num, u16 last_batch_head,
 * u16 used_idx} then desc_num 16-byte states {u8 inflight, u8 padding[5], u16 next, u64 counter},
 * each queue's area rounded up to 64 bytes. A descriptor head is in flight while its byte is 1.
 */
final class InflightWatch implements AutoCloseable {
    private static final int HEADER = 16;
    private static final int DESC_STATE = 16;
    private static final int DESC_NUM = 10;
    private static final int ALIGN = 64;

    private final FileChannel region;
    private final ByteBuffer buf;
    private final int queues;
    private final int descNum;
    private final long stride;

    private InflightWatch(FileChannel region) throws IOException {
        this.region = region;
        long size = region.size();
        ByteBuffer header = ByteBuffer.allocate(HEADER).order(ByteOrder.LITTLE_ENDIAN);
        region.read(header, 0);
        this.descNum = Short.toUnsignedInt(header.getShort(DESC_NUM));
        if (descNum == 0) {
            throw new IOException("inflight region's first queue has desc_num 0");
        }
        this.stride = (HEADER + (long) DESC_STATE * descNum + ALIGN - 1) & -ALIGN;
        this.queues = (int) (size / stride);
        this.buf = ByteBuffer.allocate((int) size).order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * Waits (polling, with a deadline) until process {@code pid} holds a memfd named {@code name}
     * (for Strata, "strata-inflight": it exists once QEMU started the device), and opens it.
     */
    static InflightWatch await(long pid, String name, long seconds) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        String target = "/memfd:" + name;
        while (true) {
            try (Stream<Path> fds = Files.list(Path.of("/proc/" + pid + "/fd"))) {
                for (Path fd : (Iterable<Path>) fds::iterator) {
                    String link;
                    try {
                        link = Files.readSymbolicLink(fd).toString();
                    } catch (IOException gone) {
                        continue; // closed while listing
                    }
                    if (link.startsWith(target)) {
                        return new InflightWatch(FileChannel.open(fd, StandardOpenOption.READ));
                    }
                }
            }
            if (System.nanoTime() > deadline) {
                throw new IOException("process " + pid + " has no memfd " + name + " after " + seconds + " s");
            }
            Thread.sleep(100);
        }
    }

    int queues() {
        return queues;
    }

    /** How many descriptor heads each queue has marked in flight right now. */
    int[] inflightPerQueue() throws IOException {
        buf.clear();
        while (buf.hasRemaining() && region.read(buf, buf.position()) > 0) {
            // a memfd reads whole; loop only for the API's sake
        }
        int[] n = new int[queues];
        for (int q = 0; q < queues; q++) {
            long base = q * stride + HEADER;
            for (int d = 0; d < descNum; d++) {
                if (buf.get((int) (base + (long) DESC_STATE * d)) != 0) {
                    n[q]++;
                }
            }
        }
        return n;
    }

    @Override
    public void close() throws IOException {
        region.close();
    }
}
