package io.strata.nbd;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.device.RawImageDevice;
import io.strata.core.image.Compression;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.testing.SyntheticImage;
import io.strata.jmh.JvmSettings;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * The NBD wire path without a network client: decoding a request header, encoding a reply header,
 * and writing a whole 4 KiB / 1 MiB read reply (header + data) to a unix socket whose other end a
 * thread drains, from a cached chunk (memory copy) and from a raw file (sendfile).
 */
@State(Scope.Thread)
public class NbdWireBenchmark extends JvmSettings {
    private final ByteBuffer requestBytes = ByteBuffer.allocateDirect(NbdRequest.SIZE);
    private final ByteBuffer replyBytes = ByteBuffer.allocateDirect(64);
    private final NbdRequest request = new NbdRequest();
    private Path dir;
    private FlatDevice rafs;
    private RawImageDevice raw;
    private long rafsBlob;
    private SocketChannel out;
    private ConnectionIo outIo;
    private final ReplyWriter writer = new ReplyWriter();
    private Thread drain;
    private long cookie;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        requestBytes.putInt(NbdProtocol.REQUEST_MAGIC).putShort((short) 0).putShort((short) NbdProtocol.CMD_READ)
                .putLong(42).putLong(1 << 20).putInt(4096).flip();
        dir = Files.createTempDirectory("strata-nbd-jmh");
        SyntheticImage.Written w = SyntheticImage.write(dir, List.of(
                SyntheticImage.uniformBlob(new Random(1), 8, 1 << 20, Compression.LZ4_BLOCK, DigestAlgorithm.SHA256)));
        rafs = FlatDevice.open(w.bootstrap(), new LocalBlobDirectory(w.blobDir()), new FlatDeviceOptions(64 << 20, false));
        rafsBlob = w.blobOffsets().get(0);
        Path rawFile = dir.resolve("raw.img");
        Files.write(rawFile, w.expectedDevice());
        raw = RawImageDevice.open(rawFile);
        Path sock = dir.resolve("s.sock");
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(sock));
        out = SocketChannel.open(UnixDomainSocketAddress.of(sock));
        SocketChannel in = server.accept();
        server.close();
        outIo = new ConnectionIo(out);
        drain = new Thread(() -> {
            ByteBuffer b = ByteBuffer.allocateDirect(1 << 20);
            try {
                while (in.read(b.clear()) >= 0) {
                    // discard
                }
            } catch (IOException ignored) {
                // closed at teardown
            }
        }, "drain");
        drain.setDaemon(true);
        drain.start();
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        outIo.close();
        drain.join(2000);
        rafs.close();
        raw.close();
        try (var s = Files.walk(dir)) {
            s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    @Benchmark
    public long decodeRequest() {
        request.decode(requestBytes);
        return request.offset + request.length;
    }

    @Benchmark
    public ByteBuffer encodeSimpleReply() {
        replyBytes.clear();
        ReplyHeaders.simple(replyBytes, 0, cookie++);
        return replyBytes;
    }

    @Benchmark
    public long read4kCachedChunk() throws IOException {
        return reply(rafs, rafsBlob + ((cookie++ * 4096) % (8 << 20)), 4096);
    }

    @Benchmark
    public long read1mCachedChunk() throws IOException {
        return reply(rafs, rafsBlob + (cookie++ % 8) * (1 << 20), 1 << 20);
    }

    @Benchmark
    public long read4kRawFile() throws IOException {
        return reply(raw, rafsBlob + ((cookie++ * 4096) % (8 << 20)), 4096);
    }

    @Benchmark
    public long read1mRawFile() throws IOException {
        return reply(raw, rafsBlob + (cookie++ % 8) * (1 << 20), 1 << 20);
    }

    private long reply(io.strata.core.device.BlockDevice device, long offset, int length) throws IOException {
        ReplyWriter w = writer;
        w.beginBatch(outIo, false);
        w.beginRead(cookie, offset, length);
        device.resolve(offset, length, w);
        w.endRead();
        w.endBatch();
        return w.bytesSent;
    }
}
