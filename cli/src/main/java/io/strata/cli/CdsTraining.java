package io.strata.cli;

import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The training run behind Strata's class-data sharing archive (issue 10 item 4): {@code STRATA_CDS=create
 * bin/strata} runs this under {@code -XX:ArchiveClassesAtExit}, and the JVM writes every class it
 * loaded into an archive that later starts map instead of loading, verifying and linking the classes
 * again. So it goes through what the commands load: it builds two small images (lz4 + BLAKE3, zstd +
 * SHA-256), inspects and exports one, pushes it to a registry in this JVM ({@link TrainingRegistry}),
 * serves it over NBD on a unix socket both from its directory and by reference (the registry client,
 * the JDK's HTTP client, Jackson, the remote blob cache: about 1,400 classes a remote image's start
 * would otherwise load) and reads a block of each through a minimal NBD client, all in one JVM, then
 * exits (the server stops in its shutdown hook).
 *
 * <p>Not a subcommand: it is no part of the command line users see, its man pages or completion.
 */
public final class CdsTraining {
    private static final long NBDMAGIC = 0x4e42444d41474943L;
    private static final long IHAVEOPT = 0x49484156454F5054L;

    private CdsTraining() {
    }

    public static void main(String[] args) throws Exception {
        HostLogging.prepare(System.getenv());
        Path dir = Files.createTempDirectory("strata-cds");
        int code;
        try {
            code = train(dir);
        } finally {
            deleteTree(dir);
        }
        // The server's threads are not daemons: exit runs its shutdown hook, then the JVM dumps.
        System.exit(code);
    }

    private static int train(Path dir) throws Exception {
        Path src = dir.resolve("src");
        Files.createDirectories(src.resolve("sub"));
        Random random = new Random(1);
        byte[] noise = new byte[300_000];
        random.nextBytes(noise);
        Files.write(src.resolve("noise.bin"), noise);
        Files.writeString(src.resolve("sub/text.txt"), "strata ".repeat(40_000), StandardCharsets.UTF_8);
        Files.write(src.resolve("sub/zeros"), new byte[200_000]);
        Files.createSymbolicLink(src.resolve("link"), Path.of("sub/text.txt"));

        Path lz4 = dir.resolve("lz4");
        Path zstd = dir.resolve("zstd");
        step(Main.run("build", src.toString(), "-o", lz4.toString()), "build");
        step(Main.run("build", src.toString(), "-o", zstd.toString(), "--compressor", "zstd", "--digest", "sha256"), "build zstd");
        Path boot = lz4.resolve("bootstrap");
        step(Main.run("inspect", boot.toString()), "inspect");
        step(Main.run("export", boot.toString(), "-o", dir.resolve("export.raw").toString(), "--verity"), "export");
        step(Main.run("export", zstd.resolve("bootstrap").toString(), "-o", dir.resolve("export2.raw").toString()), "export zstd");

        try (TrainingRegistry registry = new TrainingRegistry()) {
            String ref = registry.address() + "/cds/training:latest";
            step(Main.run("push", lz4.toString(), ref), "push");
            serveAndRead(dir, boot, ref);
            String launcher = System.getProperty(LAUNCHER);
            String localList = System.getProperty(SERVER_CLASS_LIST);
            String remoteList = System.getProperty(REMOTE_SERVER_CLASS_LIST);
            if (launcher != null && localList != null && remoteList != null) {
                serveInChild(dir.resolve("local"), Path.of(launcher), Path.of(localList), boot, null);
                serveInChild(dir.resolve("remote"), Path.of(launcher), Path.of(remoteList), boot, ref);
            }
        }
        return 0;
    }

    /** The launcher to run {@code serve nbd} with, for the servers' own class list (set by bin/strata). */
    static final String LAUNCHER = "strata.cds.launcher";
    /** Where the {@code serve nbd} child of a local image lists the classes it loads (set by bin/strata). */
    static final String SERVER_CLASS_LIST = "strata.cds.serverClassList";
    /** The same for a child that also serves an image by reference (the registry client's classes too). */
    static final String REMOTE_SERVER_CLASS_LIST = "strata.cds.remoteServerClassList";

    /**
     * A servers' class list: {@code serve nbd} in a process of its own (through the launcher, so with
     * a server's JVM flags), serving the local image (and the pushed one by reference when {@code ref}
     * is given), one block of each read, then stopped. Only the classes a server loads are in it, none
     * of build's, push's or export's: bin/strata makes smaller archives of them for {@code serve nbd},
     * and a smaller archive is a smaller start, since the JVM relocates (writes into) every page of the
     * archive it maps (docs/benchmarks.md, "Start-up and idle footprint").
     */
    private static void serveInChild(Path dir, Path launcher, Path classList, Path boot, String ref) throws Exception {
        Files.createDirectories(dir);
        Path socket = dir.resolve("child.sock");
        java.util.List<String> command = new java.util.ArrayList<>(java.util.List.of(launcher.toString(), "serve", "nbd", boot.toString(),
                "--cache-dir", dir.resolve("cache").toString(), "--socket", socket.toString(), "--metrics-interval", "0"));
        if (ref != null) {
            command.addAll(java.util.List.of("--export", "remote=" + ref));
        }
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(dir.resolve("child.log").toFile());
        pb.environment().put("STRATA_CDS", "off"); // list every class it loads, not what an older archive holds
        // Not through STRATA_JAVA_OPTS, which the launcher splits at spaces: an install path may have one.
        pb.environment().put("STRATA_CDS_CLASS_LIST", classList.toString());
        Process child = pb.start();
        try {
            if (!awaitSocket(socket, child::isAlive)) {
                throw new IOException("the training server did not listen on " + socket + ": " + Files.readString(dir.resolve("child.log")));
            }
            readFirstBlock(socket, "");
            if (ref != null) {
                readFirstBlock(socket, "remote");
            }
        } finally {
            child.destroy(); // SIGTERM: the server's shutdown hook runs, the JVM exits
            if (!child.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) {
                child.destroyForcibly();
                child.waitFor(10, java.util.concurrent.TimeUnit.SECONDS);
            }
        }
    }

    /** One server: the local image as the default export, the pushed one by reference as "remote"; a block of each. */
    private static void serveAndRead(Path dir, Path boot, String ref) throws Exception {
        Path socket = dir.resolve("nbd.sock");
        Thread server = new Thread(() -> Main.run("serve", "nbd", boot.toString(), "--export", "remote=" + ref,
                "--cache-dir", dir.resolve("cache").toString(), "--socket", socket.toString(), "--metrics-interval", "0"),
                "cds-training-server");
        server.setDaemon(true);
        server.start();
        if (!awaitSocket(socket, server::isAlive)) {
            throw new IOException("the training server did not listen on " + socket);
        }
        readFirstBlock(socket, "");
        readFirstBlock(socket, "remote");
    }

    /** Polls for a server's socket file for up to 60 s; false if it never comes or the server ends first. */
    private static boolean awaitSocket(Path socket, java.util.function.BooleanSupplier serverAlive) throws InterruptedException {
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (!Files.exists(socket)) {
            if (!serverAlive.getAsBoolean() || System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(10);
        }
        return true;
    }

    private static void step(int code, String what) throws IOException {
        if (code != 0) {
            throw new IOException("training step '" + what + "' exited " + code);
        }
    }

    /** Fixed newstyle handshake with NBD_OPT_EXPORT_NAME, one 4 KiB read, disconnect. */
    private static void readFirstBlock(Path socket, String exportName) throws IOException {
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            ByteBuffer greeting = read(ch, 18);
            if (greeting.getLong() != NBDMAGIC || greeting.getLong() != IHAVEOPT) {
                throw new IOException("not an NBD server greeting");
            }
            byte[] name = exportName.getBytes(StandardCharsets.UTF_8);
            ByteBuffer out = ByteBuffer.allocate(64 + name.length);
            out.putInt(3); // client flags: FIXED_NEWSTYLE | NO_ZEROES
            out.putLong(IHAVEOPT).putInt(1).putInt(name.length).put(name); // NBD_OPT_EXPORT_NAME
            write(ch, out);
            ByteBuffer export = read(ch, 10);
            long size = export.getLong();
            if (size < 4096) {
                throw new IOException("export of " + size + " bytes");
            }
            out.clear();
            out.putInt(0x25609513).putShort((short) 0).putShort((short) 0).putLong(7).putLong(0).putInt(4096); // NBD_CMD_READ
            write(ch, out);
            ByteBuffer reply = read(ch, 16);
            if (reply.getInt() != 0x67446698 || reply.getInt() != 0) {
                throw new IOException("the read failed");
            }
            read(ch, 4096);
            out.clear();
            out.putInt(0x25609513).putShort((short) 0).putShort((short) 2).putLong(8).putLong(0).putInt(0); // NBD_CMD_DISC
            write(ch, out);
        }
    }

    private static ByteBuffer read(SocketChannel ch, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                throw new IOException("the server closed the connection");
            }
        }
        return b.flip();
    }

    private static void write(SocketChannel ch, ByteBuffer b) throws IOException {
        b.flip();
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
