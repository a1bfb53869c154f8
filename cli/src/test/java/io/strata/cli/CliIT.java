package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** Runs the real launcher, bin/strata, as a user would, on the JDK the build runs on. */
class CliIT {
    @TempDir
    Path tmp;

    StrataProcess.Run strata(String... args) throws Exception {
        return StrataProcess.run(tmp, args);
    }

    @Test
    void helpForEveryCommand() throws Exception {
        StrataProcess.Run top = strata("--help");
        assertEquals(0, top.code());
        assertTrue(top.out().contains("inspect") && top.out().contains("export"), top.out());
        for (String c : List.of("inspect", "export")) {
            StrataProcess.Run r = strata(c, "--help");
            assertEquals(0, r.code(), r.err());
            assertTrue(r.out().startsWith("Usage: strata " + c), r.out());
        }
    }

    /**
     * Main picks a start's one subcommand by name with a switch instead of reading StrataCommand's
     * annotation (start-up time): it must answer every name and alias picocli gives the whole tree's
     * subcommands with that subcommand's class, and no other name of the tree (a nested command's,
     * an option's) with anything.
     */
    @Test
    void mainFindsEverySubcommandByItsNameAndNothingElse() {
        CommandLine whole = new CommandLine(new StrataCommand());
        Set<String> topLevel = new HashSet<>();
        for (Map.Entry<String, CommandLine> e : whole.getSubcommands().entrySet()) {
            assertEquals(e.getValue().getCommandSpec().userObject().getClass(), Main.subcommand(e.getKey()), e.getKey());
            topLevel.add(e.getKey());
        }
        assertTrue(topLevel.containsAll(List.of("build", "serve", "ctl", "help")), topLevel.toString());
        Set<String> otherNames = new HashSet<>(List.of("", "nope", "Serve", "serve "));
        for (CommandLine c : CommandTree.of(whole)) {
            otherNames.addAll(c.getSubcommands().keySet());
            for (CommandLine.Model.OptionSpec o : c.getCommandSpec().options()) {
                otherNames.addAll(List.of(o.names()));
            }
        }
        otherNames.removeAll(topLevel);
        assertTrue(otherNames.contains("nbd") && otherNames.contains("--socket"), otherNames.toString());
        for (String name : otherNames) {
            assertNull(Main.subcommand(name), name);
        }
    }

    /**
     * Main leaves out picocli's built-in converters for java.sql and java.time types (start-up time),
     * so no option or parameter anywhere in the tree may have such a type.
     */
    @Test
    void noOptionNeedsAConverterMainLeavesOut() {
        String excluded = Main.EXCLUDED_CONVERTERS;
        int args = 0;
        for (CommandLine c : CommandTree.of(new CommandLine(new StrataCommand()))) {
            for (CommandLine.Model.ArgSpec a : c.getCommandSpec().args()) {
                args++;
                List<Class<?>> types = new ArrayList<>(List.of(a.auxiliaryTypes()));
                types.add(a.type());
                for (Class<?> t : types) {
                    assertFalse(t.getName().matches(excluded),
                            c.getCommandSpec().qualifiedName() + " " + a + " has type " + t.getName());
                }
            }
        }
        assertTrue(args > 50, "only " + args + " options and parameters found");
        assertFalse("java.nio.file.Path".matches(excluded), "Path's converter must stay: options take paths");
    }

    @Test
    void inspectJsonDescribesTheFixture() throws Exception {
        StrataProcess.Run r = strata("inspect", Fixtures.nydusBootstrap().toString(), "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode j = new ObjectMapper().readTree(r.out());
        assertEquals(0x209, j.get("flat_device_blocks").asLong());
        JsonNode blob = j.get("blobs").get(0);
        assertEquals(Fixtures.NYDUS_BLOB_ID, blob.get("id").asText());
        assertEquals(512, blob.get("mapped_blkaddr").asLong());
        assertEquals("zstd", blob.get("compression").asText());
        assertEquals(2, j.get("chunks").get("unique").asLong());
    }

    /**
     * export writes beside its output and renames over it: a device node, a FIFO or a directory there
     * was replaced (exit 0, the disk never written), an output that was the image's own bootstrap was
     * destroyed, a symlink was replaced by the file, and every image came out 0600.
     */
    @Test
    void exportRefusesOutputsItWouldReplaceAndKeepsModesAndLinks() throws Exception {
        String boot = Fixtures.nydusBootstrap().toString();
        String blobs = Fixtures.nydusDir().toString();
        Path fifo = tmp.resolve("fifo");
        HostTools.run(List.of("mkfifo", fifo.toString()));
        Path dev = tmp.resolve("null-dev");
        HostTools.run(List.of("mknod", dev.toString(), "c", "1", "3"));
        for (Path p : List.of(fifo, dev, tmp)) {
            StrataProcess.Run r = strata("export", boot, "-D", blobs, "-o", p.toString());
            assertEquals(2, r.code(), r.err());
            assertTrue(r.err().contains("exists and is not a regular file"), r.err());
        }
        assertTrue(Files.exists(dev) && !Files.isRegularFile(dev) && Files.exists(fifo) && !Files.isRegularFile(fifo),
                "the device node and the FIFO are still there");
        // A directory nothing may be created in (sysfs, even for root): the output is named, with the reason.
        StrataProcess.Run denied = strata("export", boot, "-D", blobs, "-o", "/sys/strata-test.img");
        assertEquals(1, denied.code(), denied.err());
        assertTrue(denied.err().contains("/sys/strata-test.img: cannot create a file in /sys: permission denied")
                && !denied.err().contains(".partial"), denied.err());
        Path copy = tmp.resolve("copy.boot");
        Files.copy(Fixtures.nydusBootstrap(), copy);
        StrataProcess.Run self = strata("export", copy.toString(), "-D", blobs, "-o", copy.toString());
        assertEquals(2, self.code(), self.err());
        assertTrue(self.err().contains("is the image's bootstrap"), self.err());

        // A new file gets 0666 less the umask, as cp would give it; an existing one keeps its mode; a symlink stays.
        int umask = Integer.parseInt(HostTools.run(List.of("sh", "-c", "umask")).strip(), 8);
        Path fresh = tmp.resolve("fresh.img");
        assertEquals(0, strata("export", boot, "-D", blobs, "-o", fresh.toString()).code());
        assertEquals(0666 & ~umask, mode(fresh));
        Files.setPosixFilePermissions(fresh, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r-----"));
        Path link = tmp.resolve("link.img");
        Files.createSymbolicLink(link, fresh);
        assertEquals(0, strata("export", boot, "-D", blobs, "-o", link.toString()).code());
        assertTrue(Files.isSymbolicLink(link), "the symlink was kept");
        assertEquals(0640, mode(fresh), "the file it points to was rewritten with its mode");

        // A name of 240 bytes in 120 characters: the temporary name beside it is cut in bytes, not characters.
        Path wide = tmp.resolve("\u00e9".repeat(120));
        StrataProcess.Run longName = strata("export", boot, "-D", blobs, "-o", wide.toString());
        assertEquals(0, longName.code(), longName.err());

        // A read-only output its owner (not root) replaces: the mode is given after the export is written.
        HostTools.requireTool("setpriv", "util-linux");
        Path own = Files.createDirectories(tmp.resolve("nobodys"));
        Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        Path readOnly = Files.write(own.resolve("ro.img"), new byte[] {1});
        HostTools.run(List.of("chown", "-R", "65534:65534", own.toString()));
        Files.setPosixFilePermissions(readOnly, java.nio.file.attribute.PosixFilePermissions.fromString("r--r--r--"));
        ProcessBuilder pb = new ProcessBuilder("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                StrataProcess.home().resolve("bin/strata").toString(), "export", boot, "-D", blobs, "-o", readOnly.toString())
                .redirectErrorStream(true);
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        Process p = pb.start();
        String said = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), said);
        assertEquals(0444, mode(readOnly));
        assertTrue(Files.size(readOnly) > 1, "the export replaced it");
    }

    /** Holds the registry options as a command would, for picocli to fill in with their defaults. */
    @picocli.CommandLine.Command(name = "holder")
    static final class RegistryOptionsHolder {
        @picocli.CommandLine.Mixin
        RegistryCliOptions registry;
    }

    @Test
    void aOneWordInsecureRegistryIsThatHostNotDockerHub() {
        // "myregistry" parsed as the reference "myregistry/x" named Docker Hub: its requests (and tokens)
        // then went over plain HTTP.
        RegistryOptionsHolder h = new RegistryOptionsHolder();
        picocli.CommandLine cmd = new picocli.CommandLine(h);
        cmd.parseArgs("--insecure-registry", "myregistry", "--insecure-registry", "Reg.Example:5000");
        Set<String> insecure = h.registry.options(cmd).insecureRegistries();
        assertEquals(Set.of("myregistry", "reg.example:5000"), insecure);
    }

    @Test
    void pushTakesATagNotADigest() throws Exception {
        // A digest was ignored and printed back beside the manifest's ("...:v1@sha256:000...@sha256:...").
        for (String ref : List.of("127.0.0.1:1/test/m:v1@sha256:" + "0".repeat(64), "127.0.0.1:1/test/m@sha256:" + "0".repeat(64))) {
            StrataProcess.Run r = strata("push", tmp.toString(), ref);
            assertEquals(2, r.code(), r.err());
            assertTrue(r.err().contains("push to a tag, not a digest"), r.err());
        }
    }

    @Test
    void theLauncherIgnoresAnExportedCdpath() throws Exception {
        // With CDPATH exported, the launcher's cd printed the directory into its own idea of where it
        // lives: "not built yet". CDPATH=. makes bash's cd print for any relative name.
        // The launcher is run by a relative path, as a user in the checkout does (an absolute one never
        // consults CDPATH).
        ProcessBuilder pb = new ProcessBuilder("bin/strata", "--version").directory(StrataProcess.home().toFile());
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().put("CDPATH", ".:" + tmp);
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.startsWith("strata "), out);
    }

    /**
     * A JDK without a release file whose `java -version` names an early-access build ("17-ea"): the
     * launcher compared "17-ea" as a number (bash: "integer expression expected") in four places.
     */
    @Test
    void theLauncherReadsAnEarlyAccessVersion() throws Exception {
        Path jdk = Files.createDirectories(tmp.resolve("ea-jdk/bin"));
        Path fakeJava = jdk.resolve("java");
        Files.writeString(fakeJava, "#!/bin/sh\nif [ \"$1\" = -version ]; then echo 'openjdk version \"17-ea\" 2021-09-14' >&2; exit 0; fi\n"
                + "exec '" + Path.of(System.getProperty("java.home"), "bin", "java") + "' \"$@\"\n");
        Files.setPosixFilePermissions(fakeJava, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        ProcessBuilder pb = new ProcessBuilder(StrataProcess.home().resolve("bin/strata").toString(), "--version");
        pb.environment().put("JAVA_HOME", jdk.getParent().toString());
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.startsWith("strata ") && out.strip().lines().count() == 1, out);
    }

    private static int mode(Path p) throws java.io.IOException {
        return (Integer) Files.getAttribute(p, "unix:mode") & 0777;
    }

    @Test
    void exportWithNydusVerityMatchesNydus() throws Exception {
        Path out = tmp.resolve("disk.raw");
        StrataProcess.Run r = strata("export", Fixtures.nydusBootstrap().toString(), "-D", Fixtures.nydusDir().toString(),
                "-o", out.toString(), "--verity");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("root hash: "), r.out());
        assertTrue(r.err().contains("export: 100%"), "progress is reported: " + r.err());
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(out)));
        assertEquals(Fixtures.NYDUS_VERITY_EXPORT_SHA256, sha);
    }

    @Test
    void exportVeritysetupPrintsACommandThatVerifies() throws Exception {
        HostTools.requireTool("veritysetup", "cryptsetup-bin");
        // In a directory whose name has a space: the printed line is quoted for the shell it is pasted into.
        Path out = Files.createDirectories(tmp.resolve("sp ace")).resolve("v.raw");
        StrataProcess.Run r = strata("export", Fixtures.nydusBootstrap().toString(), "-o", out.toString(), "--verity=veritysetup");
        assertEquals(0, r.code(), r.err());
        String line = r.out().lines().filter(l -> l.startsWith("verify with: ")).findFirst().orElseThrow();
        HostTools.run(List.of("sh", "-c", line.substring("verify with: ".length())));
    }

    /** An output in the remote cache directory is refused however it is spelled, a symlink to it too. */
    @Test
    void exportRefusesAnOutputInTheCacheDirectoryThroughASymlink() throws Exception {
        Path cache = Files.createDirectories(tmp.resolve("cache/blobs"));
        Path link = Files.createSymbolicLink(tmp.resolve("cache-link"), tmp.resolve("cache"));
        for (Path out : List.of(cache.resolve("a.data"), link.resolve("blobs/a.data"))) {
            StrataProcess.Run r = strata("export", "127.0.0.1:1/strata/x:v1", "--cache-dir", tmp.resolve("cache").toString(), "-o", out.toString());
            assertEquals(2, r.code(), out + ": " + r.err());
            assertTrue(r.err().contains("lies in the cache directory"), r.err());
        }
    }

    @Test
    void badArgumentsPrintOneLineAndExit2() throws Exception {
        for (String[] args : List.of(
                new String[] {"export", Fixtures.nydusBootstrap().toString()},
                new String[] {"export", "/does/not/exist", "-o", tmp.resolve("o").toString()},
                new String[] {"export", Fixtures.nydusBootstrap().toString(), "-o", tmp.resolve("o").toString(), "--verity=md5"},
                new String[] {"export", Fixtures.nydusBootstrap().toString(), "-o", tmp.resolve("o").toString(), "--cache-size", "lots"},
                new String[] {"export", Fixtures.nydusBootstrap().toString(), "-o", tmp.resolve("newname.raw") + "/"},
                new String[] {"export", Fixtures.nydusBootstrap().toString(), "-o", ""},
                new String[] {"inspect"},
                // Export names NBD cannot carry: a listing with one failed for every export (libnbd).
                new String[] {"serve", "nbd", Fixtures.nydusBootstrap().toString(), "--socket", tmp.resolve("n.sock").toString(),
                        "--export", "a".repeat(4097) + "=" + Fixtures.nydusBootstrap()},
                new String[] {"serve", "nbd", "--socket", tmp.resolve("n.sock").toString(),
                        "--export", "a\tb=" + Fixtures.nydusBootstrap()},
                // --raw takes a regular file or a block device: a directory and a character device are named as such.
                new String[] {"serve", "nbd", "--raw", tmp.toString(), "--socket", tmp.resolve("n.sock").toString()},
                new String[] {"serve", "nbd", "--raw", "/dev/null", "--socket", tmp.resolve("n.sock").toString()},
                new String[] {"frobnicate"})) {
            StrataProcess.Run r = strata(args);
            assertEquals(2, r.code(), String.join(" ", args) + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
            assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        }
    }

    /**
     * A sweep of bad arguments: an unknown option is named without its value (a misspelt --creds
     * printed the password) or the arguments after it; FIFOs given as files are refused instead of
     * read (the read waited for ever); build refuses an empty -o, its own source as -o (it wrote into
     * it), a bootstrap as source (read as an empty tar) and a year past 9999; --insecure-registry is
     * checked as HOST[:PORT]; a directory or a FIFO given as an image says so; registry options are
     * checked when only local images are given (they went unchecked until an image by reference).
     */
    @Test
    void badArgumentsFoundBySweepingEachCommandAreOneLineExit2() throws Exception {
        String boot = Fixtures.nydusBootstrap().toString();
        Path src = Files.createDirectories(tmp.resolve("src"));
        Files.writeString(src.resolve("f"), "x");
        Path fifo = tmp.resolve("fifo");
        HostTools.run(List.of("mkfifo", fifo.toString()));
        Path extra = tmp.resolve("extra.json");
        Files.writeString(extra, "{\"exports\":[{\"name\":\"a\",\"extra\":1}]}");
        String[][] cases = {
            {"unknown option '--cred'; did you mean --creds?", "inspect", boot, "--cred", "bob:hunter2-secret"},
            {"unknown option '--cred'", "inspect", boot, "--cred=bob:hunter2-secret"},
            {"unknown option '--max-chunk-size'", "serve", "nbd", "--socket", tmp.resolve("s").toString(), "--max-chunk-size", "4M", boot},
            {"--prefetch: " + fifo + " is not a regular file", "build", "-o", tmp.resolve("o1").toString(), "--prefetch", fifo.toString(),
                src.toString()},
            {"config " + fifo + " is not a regular file (a FIFO", "serve", "--control", tmp.resolve("c1").toString(), "--config", fifo.toString()},
            {"config " + extra + ": not a config (unknown field 'extra' at exports[0])", "serve", "--control",
                tmp.resolve("c2").toString(), "--config", extra.toString()},
            {"certificate file " + fifo + ": not a regular file", "serve", "nbd", "--socket", tmp.resolve("s2").toString(), "--tls", "on",
                "--tls-cert", fifo.toString(), "--tls-key", fifo.toString(), boot},
            {"-o names no directory", "build", "-o", "", src.toString()},
            {"is the source directory itself", "build", "-o", src.toString(), src.toString()},
            {"is an EROFS image (a bootstrap?), not a tar file", "build", "-o", tmp.resolve("o2").toString(), boot},
            {"source " + fifo + " is not a directory, tar file or OCI image layout", "build", "-o", tmp.resolve("o3").toString(),
                fifo.toString()},
            {"--source-date-epoch: build time must not be after the year 9999", "build", "-o", tmp.resolve("o4").toString(),
                "--source-date-epoch", "99999999999999999", src.toString()},
            {"--insecure-registry 'bad host!' is not HOST[:PORT]", "inspect", "--insecure-registry", "bad host!", "localhost:1/x"},
            {"--insecure-registry 'a/b' is not HOST[:PORT]", "inspect", "--insecure-registry", "a/b", "localhost:1/x"},
            {src + " is not a bootstrap file (a directory)", "inspect", src.toString()},
            {fifo + " is not a bootstrap file (not a regular file)", "inspect", fifo.toString()},
            {"bootstrap not found: HOST/UPPER (nor an image reference", "inspect", "HOST/UPPER"},
            // Registry and cache options are checked even when only local images are given.
            {"--registry-connections must be 1..1024, not 0", "inspect", "--registry-connections", "0", boot},
            {"--registry-retries must be 1..100, not 0", "export", "--registry-retries", "0", boot, "-o", tmp.resolve("x.img").toString()},
            {"--registry-deadline must be more than 0", "serve", "nbd", "--socket", tmp.resolve("s3").toString(), "--registry-deadline", "0", boot},
            {"--registry-connect-timeout must be more than 0", "serve", "--control", tmp.resolve("c3").toString(),
                "--registry-connect-timeout", "-1"},
        };
        for (String[] c : cases) {
            String[] args = java.util.Arrays.copyOfRange(c, 1, c.length);
            StrataProcess.Run r = strata(args);
            String what = String.join(" ", args) + ": " + r.err();
            assertEquals(2, r.code(), what);
            assertEquals(1, r.err().strip().lines().count(), "one line: " + what);
            assertTrue(r.err().contains(c[0]), what);
            assertFalse(r.err().contains("hunter2") || r.err().contains("java."), what);
        }
        try (java.util.stream.Stream<Path> left = Files.list(src)) {
            assertEquals(List.of(src.resolve("f")), left.toList(), "nothing written into the source");
        }
        // A password in --insecure-registry is not echoed either.
        StrataProcess.Run secret = strata("inspect", "--insecure-registry", "bob:hunter2@reg.example.com:5000", "localhost:1/x");
        assertEquals(2, secret.code(), secret.err());
        assertTrue(secret.err().contains("--insecure-registry '***@reg.example.com:5000' is not HOST[:PORT]"), secret.err());
        // Only the unknown option, wherever it is among the unmatched arguments.
        StrataProcess.Run late = strata("inspect", boot, "extra", "--credz", "bob:hunter2");
        assertEquals(2, late.code(), late.err());
        assertTrue(late.err().startsWith("strata inspect: unknown option '--credz'") && !late.err().contains("hunter2"), late.err());
        // A pipe with a writer (<(...), /dev/stdin) is read as before: only named FIFOs are refused.
        HostTools.Outcome piped = HostTools.execute(List.of("bash", "-c", "'" + StrataProcess.home().resolve("bin/strata")
                + "' build -o '" + tmp.resolve("piped") + "' --prefetch <(echo /f) '" + src + "'"));
        assertEquals(0, piped.exitCode(), piped.output());
        // SOURCE_DATE_EPOCH is named when it, not the option, is out of range.
        StrataProcess.Run epoch = StrataProcess.run(tmp, java.util.Map.of("SOURCE_DATE_EPOCH", "999999999999"), "build", "-o",
                tmp.resolve("o5").toString(), src.toString());
        assertEquals(2, epoch.code(), epoch.err());
        assertTrue(epoch.err().contains("SOURCE_DATE_EPOCH: build time must not be after the year 9999"), epoch.err());
    }

    /**
     * {@code --raw} serves a block device (a loop device here; a logical volume or a disk alike), as
     * qemu-nbd does: it was refused as "raw image not found" though it existed.
     */
    @Test
    void aBlockDeviceIsServedAsARawImage() throws Exception {
        HostTools.requireRootWithErofsAndLoop();
        HostTools.requireTool("nbdcopy", "libnbd-bin");
        Path file = tmp.resolve("disk.raw");
        byte[] bytes = new byte[4 << 20];
        new java.util.Random(9).nextBytes(bytes);
        Files.write(file, bytes);
        String loop = HostTools.run(List.of("losetup", "-f", "--show", "-r", file.toString())).strip();
        try (StrataProcess.Server server = StrataProcess.start(tmp, "blk", "serve", "nbd", "--raw", loop,
                "--socket", tmp.resolve("blk.sock").toString())) {
            server.awaitLog("nbd: export");
            Path copy = tmp.resolve("copy.raw");
            HostTools.run(List.of("nbdcopy", StrataProcess.nbdUri(tmp, "blk"), copy.toString()));
            assertEquals(-1, Files.mismatch(file, copy), "the copy of " + loop);
        } finally {
            HostTools.run(List.of("losetup", "-d", loop));
        }
        // In the error's words: what it is, not "not found".
        StrataProcess.Run dir = strata("serve", "nbd", "--raw", tmp.toString(), "--socket", tmp.resolve("d.sock").toString());
        assertEquals(2, dir.code(), dir.err());
        assertTrue(dir.err().contains("raw image " + tmp + " is a directory"), dir.err());
    }

    /**
     * Through the launcher (which runs `serve nbd` without opening the JDK's internals) a sparse raw
     * image's holes are mapped as holes: the first way looked for the channel's descriptor by
     * reflection, which failed there and dropped every block-status client's connection.
     */
    @Test
    void aSparseRawImageIsMappedWithItsHolesByTheInstalledLauncher() throws Exception {
        HostTools.requireTool("nbdinfo", "libnbd-bin");
        HostTools.requireTool("nbdcopy", "libnbd-bin");
        Path sparse = tmp.resolve("sparse.raw");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(sparse.toFile(), "rw")) {
            f.setLength(8 << 20);
            f.seek(6 << 20);
            f.write(new byte[] {1, 2, 3});
        }
        try (StrataProcess.Server server = StrataProcess.start(tmp, "sparse", "serve", "nbd", "--raw", sparse.toString(),
                "--socket", tmp.resolve("sparse.sock").toString())) {
            server.awaitLog("nbd: export");
            String map = HostTools.run(List.of("nbdinfo", "--map", StrataProcess.nbdUri(tmp, "sparse")));
            assertTrue(map.lines().anyMatch(l -> l.trim().matches("0\\s+6291456\\s+3\\s+hole,zero")), map);
            Path copy = tmp.resolve("sparse-copy.raw");
            HostTools.run(List.of("nbdcopy", StrataProcess.nbdUri(tmp, "sparse"), copy.toString()));
            assertEquals(-1, Files.mismatch(sparse, copy));
        }
    }

    /** {@code --verity} before the image: its optional layout took the image, which was then "missing". */
    @Test
    void verityWithoutALayoutBeforeTheImageLeavesTheImageAlone() throws Exception {
        String boot = Fixtures.nydusBootstrap().toString();
        StrataProcess.Run r = strata("export", "-o", tmp.resolve("v.img").toString(), "--verity", boot);
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("bytes of nydus hash tree"), r.out());
        StrataProcess.Run named = strata("export", "-o", tmp.resolve("w.img").toString(), "--verity", "veritysetup", boot);
        assertEquals(0, named.code(), named.err());
        assertTrue(named.out().contains("bytes of veritysetup hash tree"), named.out());
        // A file named like the layout in the working directory does not make it an image.
        Files.writeString(tmp.resolve("veritysetup"), "not an image");
        HostTools.Outcome file = HostTools.execute(List.of("bash", "-c", "cd '" + tmp + "' && '" + StrataProcess.home().resolve("bin/strata")
                + "' export -o x.img --verity veritysetup '" + boot + "'"));
        assertEquals(0, file.exitCode(), file.output());
        assertTrue(file.output().contains("bytes of veritysetup hash tree"), file.output());
        // A value attached with '=' is the layout, whatever it looks like (it was left as a second image).
        StrataProcess.Run attached = strata("export", boot, "-o", tmp.resolve("y.img").toString(), "--verity=x.y");
        assertEquals(2, attached.code(), attached.err());
        assertTrue(attached.err().contains("--verity must be 'nydus' or 'veritysetup', not 'x.y'"), attached.err());
    }

    @Test
    void brokenImagesFailWithOneLineAndExit1() throws Exception {
        Path blobs = Files.createDirectories(tmp.resolve("empty-blobs"));
        StrataProcess.Run missing = strata("export", Fixtures.nydusBootstrap().toString(), "-D", blobs.toString(), "-o", tmp.resolve("o").toString());
        assertEquals(1, missing.code(), missing.err());
        assertTrue(missing.err().contains("missing 1 blob(s)") && missing.err().contains(Fixtures.NYDUS_BLOB_ID), missing.err());
        assertEquals(1, missing.err().strip().lines().count(), missing.err());
        assertFalse(Files.exists(tmp.resolve("o")), "no output left behind");

        Path bad = tmp.resolve("bad.boot");
        byte[] b = Files.readAllBytes(Fixtures.nydusBootstrap());
        b[1024] = 0;
        Files.write(bad, b);
        StrataProcess.Run r = strata("inspect", bad.toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("superblock.magic"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }

    @Test
    void imagesWhoseSizesDisagreeAreRefusedBeforeAnythingIsWritten() throws Exception {
        // Issue 8, defect 4: the fixture's device slot (at 1408) made to claim 2^31 blocks for its
        // 36 KiB blob, then its mapped_blkaddr (at 1408 + 68) moved to 2^31 blocks: both were
        // accepted, and export wrote terabytes of zeros.
        Path blobs = Fixtures.nydusDir();
        for (int[] patch : new int[][] {{1408 + 64, 1 << 31}, {1408 + 68, 1 << 31}}) {
            Path bad = tmp.resolve("sizes.boot");
            byte[] b = Files.readAllBytes(Fixtures.nydusBootstrap());
            java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(patch[0], patch[1]);
            Files.write(bad, b);
            String field = patch[0] == 1408 + 64 ? "device_table[0].blocks = 2147483648" : "device_table[0].mapped_blkaddr = 0x80000000";
            Path out = tmp.resolve("out.img");
            for (String[] args : List.of(new String[] {"inspect", bad.toString()},
                    new String[] {"export", bad.toString(), "-D", blobs.toString(), "-o", out.toString()})) {
                StrataProcess.Run r = strata(args);
                assertEquals(1, r.code(), String.join(" ", args) + ": " + r.err());
                assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
                assertTrue(r.err().contains(bad + ": " + field), r.err());
                assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
                assertFalse(Files.exists(out), "export wrote nothing");
            }
        }
    }

    @Test
    void strataDebugSetButEmptyMeansNoStackTrace() throws Exception {
        // Issue 8, defect 5: STRATA_DEBUG= (set, empty) turned stack traces on. Only a non-empty value
        // other than 0 or false turns them on.
        Path bad = tmp.resolve("bad.boot");
        byte[] b = Files.readAllBytes(Fixtures.nydusBootstrap());
        b[1024] = 0;
        Files.write(bad, b);
        for (String value : new String[] {"", "0", "false", "FALSE", " "}) {
            StrataProcess.Run r = StrataProcess.run(tmp, java.util.Map.of("STRATA_DEBUG", value), "inspect", bad.toString());
            assertEquals(1, r.code(), r.err());
            assertEquals(1, r.err().strip().lines().count(), "STRATA_DEBUG='" + value + "': one line: " + r.err());
        }
        for (String value : new String[] {"1", "true", "yes"}) {
            StrataProcess.Run r = StrataProcess.run(tmp, java.util.Map.of("STRATA_DEBUG", value), "inspect", bad.toString());
            assertEquals(1, r.code(), r.err());
            assertTrue(r.err().contains("\tat io.strata."), "STRATA_DEBUG='" + value + "': a stack trace: " + r.err());
        }
    }
}
