package io.strata.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.strata.core.device.RawImageDevice;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Metadata contexts as the NBD spec words them ("Metadata querying"): LIST_META_CONTEXT replies carry
 * context ID 0, and a SET_META_CONTEXT replaces the previous selection "including when this command
 * fails", so BLOCK_STATUS after a failed SET is refused (EINVAL) rather than answered for the earlier one.
 */
class MetaContextTest {
    private static final int EINVAL = 22;

    @TempDir
    Path tmp;
    private NbdServer server;
    private RawImageDevice device;
    private Path socket;

    @BeforeEach
    void start() throws IOException {
        Path image = tmp.resolve("disk.raw");
        Files.write(image, new byte[64 << 10]);
        device = RawImageDevice.open(image);
        ExportRegistry registry = new ExportRegistry();
        registry.add(new Export("", device, device.describeForClients()), true);
        server = new NbdServer(registry, NbdServer.Options.defaults());
        socket = tmp.resolve("nbd.sock");
        server.listenUnix(socket);
    }

    @AfterEach
    void stop() throws IOException {
        server.close();
        device.close();
    }

    private static ByteBuffer query(String export, String... queries) {
        byte[] name = export.getBytes(StandardCharsets.UTF_8);
        int len = 4 + name.length + 4;
        for (String q : queries) {
            len += 4 + q.getBytes(StandardCharsets.UTF_8).length;
        }
        ByteBuffer b = ByteBuffer.allocate(len).putInt(name.length).put(name).putInt(queries.length);
        for (String q : queries) {
            byte[] qb = q.getBytes(StandardCharsets.UTF_8);
            b.putInt(qb.length).put(qb);
        }
        return b.flip();
    }

    private static ByteBuffer expect(TestClient c, int type) throws IOException {
        Object[] r = c.readOptionReply();
        assertEquals(type, (Integer) r[0], "option reply type 0x" + Integer.toHexString((Integer) r[0]));
        return (ByteBuffer) r[1];
    }

    @Test
    void listRepliesCarryIdZeroAndAFailedSetLeavesNothingSelected() throws Exception {
        try (TestClient c = new TestClient(UnixDomainSocketAddress.of(socket))) {
            c.greet();
            c.sendOption(NbdProtocol.OPT_STRUCTURED_REPLY, ByteBuffer.allocate(0));
            expect(c, NbdProtocol.REP_ACK);

            c.sendOption(NbdProtocol.OPT_LIST_META_CONTEXT, query("", "base:allocation"));
            assertEquals(0, expect(c, NbdProtocol.REP_META_CONTEXT).getInt(0), "LIST's context ID");
            expect(c, NbdProtocol.REP_ACK);

            c.sendOption(NbdProtocol.OPT_SET_META_CONTEXT, query("", "base:allocation"));
            assertNotEquals(0, expect(c, NbdProtocol.REP_META_CONTEXT).getInt(0), "SET's context ID");
            expect(c, NbdProtocol.REP_ACK);
            // This SET fails (no such export): the selection above is gone with it.
            c.sendOption(NbdProtocol.OPT_SET_META_CONTEXT, query("no-such-export", "base:allocation"));
            expect(c, NbdProtocol.REP_ERR_UNKNOWN);

            assertEquals(64 << 10, c.goAfterOptions());
            c.request(NbdProtocol.CMD_BLOCK_STATUS, 7, 0, 4096);
            ByteBuffer h = c.read(20);
            assertEquals(NbdProtocol.STRUCTURED_REPLY_MAGIC, h.getInt(0));
            assertEquals(NbdProtocol.REPLY_TYPE_ERROR, h.getShort(6) & 0xffff, "BLOCK_STATUS with no context selected");
            assertEquals(7L, h.getLong(8));
            ByteBuffer payload = c.read(h.getInt(16));
            assertEquals(EINVAL, payload.getInt(0));
        }
    }
}
