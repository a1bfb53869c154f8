package io.strata.vhost;

import io.strata.core.device.RawImageDevice;
import io.strata.jmh.JvmSettings;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The virtqueue path end to end, with an in-process front-end (memfd guest memory, eventfds): put a
 * virtio-blk read in the avail ring, kick, and spin until it is used. Covers the kick eventfd, the
 * worker's wake-up, chain parsing, the read straight into guest memory and the used-ring publish;
 * not QEMU or a guest.
 */
@State(Scope.Thread)
public class VirtqueueBenchmark extends JvmSettings {
    @Param({"4096", "65536"})
    int length;

    private Path dir;
    private RawImageDevice device;
    private VhostUserServer server;
    private TestFrontEnd frontEnd;
    private long sector;

    @Setup(Level.Trial)
    public void setup() throws Exception {
        dir = Files.createTempDirectory("strata-vq-jmh");
        byte[] image = new byte[64 << 20];
        new Random(1).nextBytes(image);
        Path file = dir.resolve("disk.img");
        Files.write(file, image);
        device = RawImageDevice.open(file);
        server = new VhostUserServer(dir.resolve("vhost.sock"), device, 1);
        server.start();
        frontEnd = new TestFrontEnd(dir.resolve("vhost.sock"));
        frontEnd.setUp(true);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        frontEnd.close();
        server.close();
        device.close();
        try (var s = Files.walk(dir)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    @Benchmark
    public int readRoundTrip() {
        sector = (sector + length / 512) % ((64 << 20) / 512 - length / 512);
        frontEnd.submit(frontEnd.request(VirtioBlk.T_IN, sector, length));
        return frontEnd.spinUsed();
    }
}
