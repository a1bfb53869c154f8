package io.strata.nbd;

import io.strata.core.blob.LocalBlobDirectory;
import io.strata.core.device.BlockDevice;
import io.strata.core.device.FlatDevice;
import io.strata.core.device.FlatDeviceOptions;
import io.strata.core.export.DeviceExporter;
import io.strata.core.testing.Fixtures;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** An in-process server over the Nydus fixture (and optional extra exports), on a unix socket and TCP. */
final class ServerFixture implements AutoCloseable {
    final Path dir;
    final Path socket;
    final NbdServer server;
    final InetSocketAddress tcp;
    final FlatDevice fixture;
    final Path fixtureExport;
    /** The fixture served as the default export (its counters are what the metrics report). */
    final Export defaultExport;
    private final List<BlockDevice> devices = new ArrayList<>();

    ServerFixture(Path dir, List<Export> extra) throws IOException {
        this(dir, extra, NbdServer.Options.defaults());
    }

    ServerFixture(Path dir, List<Export> extra, NbdServer.Options options) throws IOException {
        this(dir, extra, options, TlsConfig.off());
    }

    ServerFixture(Path dir, List<Export> extra, TlsConfig tls) throws IOException {
        this(dir, extra, NbdServer.Options.defaults(), tls);
    }

    ServerFixture(Path dir, List<Export> extra, NbdServer.Options options, TlsConfig tls) throws IOException {
        this.dir = dir;
        this.socket = dir.resolve("nbd.sock");
        this.fixture = FlatDevice.open(Fixtures.nydusBootstrap(), new LocalBlobDirectory(Fixtures.nydusDir()),
                FlatDeviceOptions.defaults());
        devices.add(fixture);
        this.fixtureExport = dir.resolve("fixture.raw");
        DeviceExporter.export(fixture, fixtureExport, null, (d, t) -> { });
        ExportRegistry registry = new ExportRegistry();
        this.defaultExport = new Export("", fixture, fixture.describe());
        registry.add(defaultExport, true);
        for (Export e : extra) {
            registry.add(e, false);
            devices.add(e.device());
        }
        server = new NbdServer(registry, options, tls);
        server.listenUnix(socket);
        tcp = server.listenTcp("127.0.0.1", 0);
    }

    String unixUri(String export) {
        return "nbd+unix:///" + export + "?socket=" + socket;
    }

    String tcpUri(String export) {
        return "nbd://127.0.0.1:" + tcp.getPort() + "/" + export;
    }

    /** A well-behaved client reads the whole default export correctly (the server still serves). */
    void assertServes() throws IOException {
        byte[] expected = java.nio.file.Files.readAllBytes(fixtureExport);
        try (TestClient c = new TestClient(unixAddress())) {
            org.junit.jupiter.api.Assertions.assertEquals(expected.length, c.go());
            c.request(NbdProtocol.CMD_READ, 7, 0, expected.length);
            long[] h = c.simpleReply();
            org.junit.jupiter.api.Assertions.assertArrayEquals(new long[] {0, 7}, h);
            org.junit.jupiter.api.Assertions.assertArrayEquals(expected, c.read(expected.length).array());
        }
    }

    UnixDomainSocketAddress unixAddress() {
        return UnixDomainSocketAddress.of(socket);
    }

    @Override
    public void close() throws IOException {
        server.close();
        for (BlockDevice d : devices) {
            d.close();
        }
    }
}
