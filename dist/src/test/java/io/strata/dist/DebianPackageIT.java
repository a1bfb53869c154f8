package io.strata.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Debian package (issue 11 part 3), on this machine as a user would have it: {@code apt-get install
 * ./strata_*.deb}, {@code strata --version} from /usr/bin, {@code man strata-serve}, an image served
 * through the installed socket unit, then {@code apt-get purge} leaves none of its files.
 *
 * <p>PID 1 here is not systemd, so the unit runs the way systemd would start it on the first client:
 * its ExecStart, read from the installed file with $STRATA_ARGS filled in, under
 * {@code systemd-socket-activate} listening where the installed strata-nbd.socket says. (DynamicUser
 * and the sandboxing options need a real systemd; SystemdIT checks they verify.)
 *
 * <p>The package is purged in a finally, so a failing test leaves the machine as it found it; an
 * install left by a run that was killed is purged first. apt waits for the dpkg lock at most 180 s.
 */
@Timeout(600)
class DebianPackageIT {
    private static final Map<String, String> APT_ENV = Map.of("DEBIAN_FRONTEND", "noninteractive");
    /** Wait this long for another apt/dpkg (e.g. scripts/install-deps.sh) to let go of the lock. */
    private static final String LOCK_WAIT = "-oDPkg::Lock::Timeout=180";
    /** The launcher finds java as a user's shell would: on PATH, the runtime the package depends on. */
    private static final Map<String, String> USER_ENV = Map.of("JAVA_HOME", "", "STRATA_JAVA_OPTS", "", "STRATA_DEBUG", "");

    @TempDir
    Path tmp;

    @Test
    void installsServesThroughTheUnitAndPurgesLeavingNothing() throws Exception {
        HostTools.require("root".equals(System.getProperty("user.name")), "installing a package needs root");
        HostTools.requireTool("apt-get", "apt");
        HostTools.requireTool("man", "man-db");
        HostTools.requireTool("nbdcopy", "libnbd-bin");
        HostTools.requireTool("nbdinfo", "libnbd-bin");
        HostTools.requireTool("systemd-socket-activate", "systemd");
        Path deb = Dist.built("strata_", "_all.deb");
        if (installed()) {
            purge(); // this package, left installed by an earlier run that was killed
        }
        List<String> owned;
        try {
            Dist.run(List.of("apt-get", "install", "-y", "--no-install-recommends", LOCK_WAIT, deb.toAbsolutePath().toString()),
                    APT_ENV, 300, tmp);
            assertTrue(installed(), "dpkg says strata is not installed");
            owned = Dist.run(List.of("dpkg", "-L", "strata"), Map.of(), 60, tmp).lines().filter(l -> l.startsWith("/")).toList();
            for (String f : List.of("/usr/bin/strata", "/usr/share/man/man1/strata-serve.1.gz", "/usr/share/bash-completion/completions/strata",
                    "/lib/systemd/system/strata.service", "/lib/systemd/system/strata-nbd.socket", "/lib/systemd/system/strata-nbd.service")) {
                assertTrue(owned.contains(f), "the package lacks " + f + ": " + owned);
            }

            assertEquals("strata " + Dist.version(), Dist.run(List.of("/usr/bin/strata", "--version"), USER_ENV, 60, tmp).strip());
            // postinst made the class-data archive for the installed jars and the JDK apt ran with.
            try (var archives = Files.list(Paths.get("/usr/share/strata/cds"))) {
                assertTrue(archives.anyMatch(p -> p.getFileName().toString().matches("strata-java-.*\\.jsa")), "no class-data archive");
            }

            assertEquals("/usr/share/man/man1/strata-serve.1.gz", Dist.run(List.of("man", "-w", "strata-serve"), Map.of(), 60, tmp).strip());
            String page = Dist.run(List.of("man", "strata-serve"), Map.of("MANWIDTH", "200", "LC_ALL", "C", "MANPAGER", "cat", "PAGER", "cat"), 60, tmp);
            assertTrue(page.startsWith("STRATA-SERVE(1)"), page);
            Dist.assertContains(page, "strata serve");

            String completion = Dist.run(List.of("bash", "--norc", "--noprofile", "-c",
                    "source /usr/share/bash-completion/completions/strata && complete -p strata"), Map.of(), 60, tmp);
            Dist.assertContains(completion, "-F ");

            servesThroughTheInstalledSocketUnit();
        } finally {
            purge();
        }
        assertFalse(installed(), "still installed after purge");
        List<String> left = new ArrayList<>();
        for (String f : owned) {
            Path p = Paths.get(f);
            // Directories such as /usr/share/man/man1 (or /lib, a link to one) belong to other packages too and stay.
            if (Files.exists(p, LinkOption.NOFOLLOW_LINKS) && !Files.isDirectory(p)) {
                left.add(f);
            }
        }
        assertEquals(List.of(), left, "files of the package left after purge");
        // Including the class-data archive postinst made, which is no file of the package (prerm removes it).
        assertFalse(Files.exists(Paths.get("/usr/share/strata")), "/usr/share/strata left after purge");
    }

    private void servesThroughTheInstalledSocketUnit() throws Exception {
        String socketUnit = Files.readString(Paths.get("/lib/systemd/system/strata-nbd.socket"), StandardCharsets.UTF_8);
        String listen = value(socketUnit, "ListenStream");
        assertTrue(listen.startsWith("/"), "a unix socket path: " + listen);
        Path socket = Paths.get(listen);
        String service = Files.readString(Paths.get("/lib/systemd/system/strata-nbd.service"), StandardCharsets.UTF_8);
        String execStart = value(service, "ExecStart");
        assertTrue(execStart.startsWith("/usr/bin/strata ") && execStart.contains("$STRATA_ARGS"), execStart);
        // systemd splits an unquoted $VAR at whitespace into words; the image is one word here.
        List<String> argv = new ArrayList<>(Arrays.asList(execStart.replace("$STRATA_ARGS", Fixtures.nydusBootstrap().toString()).split("\\s+")));

        List<String> cmd = new ArrayList<>(List.of("systemd-socket-activate", "-l", socket.toString()));
        cmd.addAll(argv);
        Files.deleteIfExists(socket);
        Path log = tmp.resolve("activate.log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().remove("JAVA_HOME");
        Process activate = pb.start();
        try {
            Dist.awaitText(log, "Listening on " + socket, activate, 60);
            assertEquals(String.valueOf(Fixtures.NYDUS_BLOCKS * 4096),
                    Dist.run(List.of("nbdinfo", "--size", "nbd+unix:///?socket=" + socket), Map.of(), 60, tmp).strip());
            Path copy = tmp.resolve("copy.raw");
            Dist.run(List.of("nbdcopy", "nbd+unix:///?socket=" + socket, copy.toString()), Map.of(), 120, tmp);
            Dist.assertContains(Files.readString(log, StandardCharsets.UTF_8), "nbd: listening on unix:" + socket + " (passed in)");

            // The device is the start of Nydus's own verity export, whose sha256 its test expects.
            Path export = tmp.resolve("export.raw");
            Dist.run(List.of("/usr/bin/strata", "export", Fixtures.nydusBootstrap().toString(), "-o", export.toString(), "--verity=nydus"),
                    USER_ENV, 120, tmp);
            byte[] expected = Files.readAllBytes(export);
            assertEquals(Fixtures.NYDUS_VERITY_EXPORT_SHA256, HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(expected)));
            assertArrayEquals(Arrays.copyOf(expected, (int) (Fixtures.NYDUS_BLOCKS * 4096)), Files.readAllBytes(copy),
                    "the device served through the unit");
        } finally {
            Dist.stop(activate);
            Files.deleteIfExists(socket);
        }
    }

    /** The value of the first uncommented {@code key=} line of a unit file. */
    private static String value(String unit, String key) {
        return unit.lines().filter(l -> l.startsWith(key + "=")).findFirst()
                .orElseThrow(() -> new AssertionError("no " + key + "= in\n" + unit)).substring(key.length() + 1).strip();
    }

    private boolean installed() throws Exception {
        Dist.Outcome o = Dist.execute(List.of("dpkg-query", "-W", "-f=${Status}", "strata"), Map.of(), 60, tmp);
        return o.code() == 0 && o.output().contains("install ok installed");
    }

    private void purge() throws Exception {
        Dist.run(List.of("apt-get", "purge", "-y", LOCK_WAIT, "strata"), APT_ENV, 300, tmp);
    }
}
