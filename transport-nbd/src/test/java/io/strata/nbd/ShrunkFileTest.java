package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.device.RawImageDevice;
import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A file cut short while it is served (a raw image, a Nydus bootstrap) fails the reads that reach past
 * its new end with EIO, and only those: the connection goes on and serves what the file still holds.
 * Before, the reply's header went out first and the short read then ended the connection.
 */
class ShrunkFileTest {
    private static final int MIB = 1 << 20;

    @TempDir
    Path tmp;
    ServerFixture server;

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
    }

    @Test
    void aRawImageCutShortFailsOnlyTheReadsPastItsNewEnd() throws Exception {
        HostTools.requireTool("qemu-io", "qemu-utils");
        Path image = tmp.resolve("disk.raw");
        byte[] content = new byte[2 * MIB];
        Arrays.fill(content, (byte) 0x5a);
        Files.write(image, content);
        server = new ServerFixture(tmp, List.of(new Export("raw", RawImageDevice.open(image), "raw")));
        shrink(image, MIB);

        // qemu-io runs its commands in order on one connection (structured replies); a failed read
        // prints its error and the next command goes on. 4 KiB goes through the staging buffer, 128 KiB
        // and more through sendfile (ReplyWriter.SENDFILE_MIN).
        List<String> command = new ArrayList<>(List.of("qemu-io", "-r", "-f", "raw", server.unixUri("raw")));
        for (String c : new String[] {"read -q -P 0x5a 0 64k", "read -q 1536k 4k", "read -q 1M 128k",
                "read -q 1020k 8k", "read -q -P 0x5a 1020k 4k", "read -q -P 0x5a 512k 512k"}) {
            command.add("-c");
            command.add(c);
        }
        String out = HostTools.execute(command).output();
        assertEquals(3, out.lines().filter(l -> l.contains("read failed: Input/output error")).count(), out);
        assertTrue(out.lines().noneMatch(l -> l.contains("Pattern verification failed") || l.contains("Connection")
                || l.contains("Broken pipe")), "the good reads before and after got the file's bytes on one connection: " + out);
    }

    @Test
    void aBootstrapCutShortFailsItsReadsWithSimpleRepliesToo() throws Exception {
        Path bootstrap = Files.copy(Fixtures.nydusBootstrap(), tmp.resolve("image.boot"));
        FlatDevice device = FlatDevice.open(bootstrap, new LocalBlobDirectory(Fixtures.nydusDir()), FlatDeviceOptions.defaults());
        server = new ServerFixture(tmp, List.of(new Export("image", device, "image")));
        byte[] head = Arrays.copyOf(Files.readAllBytes(bootstrap), 8192);
        shrink(bootstrap, 8192);

        try (TestClient c = new TestClient(server.unixAddress())) {
            c.go("image");
            c.request(NbdProtocol.CMD_READ, 1, 12288, 4096);
            assertArrayEquals(new long[] {NbdProtocol.EIO, 1}, c.simpleReply(), "the region past the bootstrap's new end");
            c.request(NbdProtocol.CMD_READ, 2, 0, 8192);
            assertArrayEquals(new long[] {0, 2}, c.simpleReply(), "what the bootstrap still holds, on the same connection");
            ByteBuffer got = c.read(8192);
            assertArrayEquals(head, got.array());
        }
    }

    private static void shrink(Path file, long size) throws Exception {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(size);
        }
    }
}
