package io.strata.vhost;

import static io.strata.vhost.VhostUserProtocol.*;

import io.strata.core.device.RawImageDevice;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Records the seeds of {@link VhostUserMessageFuzzTest}: QEMU-like sessions played by the test
 * front-end against a real back-end, each saved as the fuzz test's records. Run by hand when the
 * protocol grows (java -cp test-classes:classes:... io.strata.vhost.FuzzSeedRecorder DIR); the
 * output is committed under src/test/resources.
 */
final class FuzzSeedRecorder {
    private FuzzSeedRecorder() {
    }

    interface Scenario {
        void play(TestFrontEnd fe) throws Exception;
    }

    public static void main(String[] args) throws Exception {
        Path out = Path.of(args[0]);
        Files.createDirectories(out);
        Path dir = Files.createTempDirectory("seed-recorder");
        Path image = dir.resolve("disk.img");
        Files.write(image, new byte[1 << 20]);
        try (RawImageDevice device = RawImageDevice.open(image);
             VhostUserServer server = new VhostUserServer(dir.resolve("s"), device, 2)) {
            server.start();
            record(server, dir, out.resolve("qemu-start-event-idx"), fe -> fe.setUp(true));
            record(server, dir, out.resolve("qemu-start-no-event-idx"), fe -> fe.setUp(false));
            record(server, dir, out.resolve("qemu-start-then-reset"), fe -> {
                fe.setUp(true);
                fe.stopQueue();
                fe.startQueue(1);
            });
            record(server, dir, out.resolve("inflight-and-config"), fe -> {
                fe.negotiate(true);
                ByteBuffer p = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
                p.putLong(0).putLong(0).putShort((short) 1).putShort((short) TestFrontEnd.QSIZE).putInt(0).flip();
                fe.send(GET_INFLIGHT_FD, 0, p);
                int fd = fe.replyFd(GET_INFLIGHT_FD);
                ByteBuffer set = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
                set.putLong(InflightRegion.strideOf(TestFrontEnd.QSIZE)).putLong(0).putShort((short) 1)
                        .putShort((short) TestFrontEnd.QSIZE).putInt(0).flip();
                fe.acked(SET_INFLIGHT_FD, set, fd);
                io.strata.core.os.Native.libc().close(fd);
                fe.send(GET_CONFIG, 0, ByteBuffer.allocate(12 + 64).order(ByteOrder.LITTLE_ENDIAN).putInt(0).putInt(64).putInt(0).flip());
                fe.reply(GET_CONFIG);
                fe.getU64(GET_QUEUE_NUM);
                ByteBuffer table = ByteBuffer.allocate(8 + 32).order(ByteOrder.LITTLE_ENDIAN);
                table.putInt(1).putInt(0).putLong(TestFrontEnd.GPA_BASE).putLong(TestFrontEnd.MEM_SIZE)
                        .putLong(TestFrontEnd.UVA_BASE).putLong(0).flip();
                fe.acked(SET_MEM_TABLE, table, fe.memFd);
                fe.startQueue(0);
                fe.acked(SET_FEATURES, TestFrontEnd.u64(fe.getU64(GET_FEATURES)));
                fe.acked(SET_VRING_ENABLE, TestFrontEnd.state(0, 0));
            });
            record(server, dir, out.resolve("two-regions"), fe -> {
                fe.negotiate(true);
                fe.acked(SET_MEM_TABLE, HostileMessageTest.twoRegions(), fe.memFd, fe.memFd);
                fe.startQueue(0);
            });
        }
    }

    static void record(VhostUserServer server, Path dir, Path file, Scenario s) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        TestFrontEnd.recording = bytes;
        try (TestFrontEnd fe = new TestFrontEnd(dir.resolve("s"))) {
            s.play(fe);
        } finally {
            TestFrontEnd.recording = null;
        }
        Files.write(file, bytes.toByteArray());
        System.out.println(file + ": " + bytes.size() + " bytes");
    }
}
