package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.Fixtures;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The class-data sharing archive bin/strata starts with (issue 10 item 4): mvn package made one for
 * the JDK that builds, and a start of that JDK takes Strata's classes from it; an archive that does
 * not fit (garbage, other jars) is never used and never shows: the command runs and prints as
 * without it.
 */
class ClassDataArchiveIT {
    @TempDir
    Path tmp;

    /** The archive's name for the running JDK, as bin/strata spells it from the JDK's release file. */
    private static String archiveName() {
        return "strata-java-" + System.getProperty("java.runtime.version").replaceAll("[^A-Za-z0-9.+_-]", "_") + ".jsa";
    }

    @Test
    void thePackagedArchiveIsUsedByTheJdkItWasMadeFor() throws Exception {
        Path archive = StrataProcess.home().resolve("cli/target/cds").resolve(archiveName());
        assertTrue(Files.isRegularFile(archive), "mvn package made no " + archive);
        Path classes = tmp.resolve("classes.log");
        StrataProcess.Run on = StrataProcess.run(tmp, Map.of("STRATA_JAVA_OPTS", "-Xlog:class+load:file=" + classes),
                "inspect", Fixtures.nydusBootstrap().toString());
        assertEquals(0, on.code(), on.err());
        String loaded = Files.readString(classes, StandardCharsets.UTF_8);
        // A static archive (bin/strata's since issue 10 item 4): Strata's classes and picocli's, whose
        // Java 5 class files a dynamic archive of JDK 17 could not hold.
        assertTrue(loaded.contains("io.strata.cli.InspectCommand source: shared objects file"), "not from the archive:\n"
                + loaded.lines().filter(l -> l.contains("io.strata")).limit(5).toList());
        // On JDK 21 and later this holds only because bin/strata leaves the class list's "@cp" lines out
        // of the dump: with them, the dump links picocli's classes and then cannot archive them.
        assertTrue(loaded.contains("picocli.CommandLine source: shared objects file"), "picocli not from the archive");

        Files.delete(classes);
        StrataProcess.Run off = StrataProcess.run(tmp, Map.of("STRATA_CDS", "off", "STRATA_JAVA_OPTS", "-Xlog:class+load:file=" + classes),
                "inspect", Fixtures.nydusBootstrap().toString());
        assertEquals(0, off.code(), off.err());
        assertFalse(Files.readString(classes, StandardCharsets.UTF_8).contains("io.strata.cli.InspectCommand source: shared objects file"),
                "STRATA_CDS=off still used the archive");
        assertEquals(on.out(), off.out());
    }

    /**
     * {@code serve nbd} of a local image maps the servers' own archive (only the classes a server
     * loads, made by CdsTraining's child server), and a reference maps the one that adds the registry
     * client; every other command maps the archive of all commands.
     */
    @Test
    void serveNbdMapsTheServersOwnArchive() throws Exception {
        Path cds = StrataProcess.home().resolve("cli/target/cds");
        String all = archiveName();
        String local = all.replace(".jsa", "-serve-nbd.jsa");
        String remote = all.replace(".jsa", "-serve-nbd-remote.jsa");
        for (String name : List.of(local, remote)) {
            assertTrue(Files.isRegularFile(cds.resolve(name)), "mvn package made no " + name);
            assertTrue(Files.size(cds.resolve(name)) < Files.size(cds.resolve(all)), name + " is not smaller than " + all);
        }
        Path log = tmp.resolve("cds.log");
        try (StrataProcess.Server server = StrataProcess.start(tmp, "serve", Map.of("STRATA_JAVA_OPTS",
                "-Xlog:cds=info:file=" + log + " -Xlog:class+load=info:file=" + tmp.resolve("classes.log")),
                "serve", "nbd", Fixtures.nydusBootstrap().toString(), "--socket", tmp.resolve("s.sock").toString(), "--metrics-interval", "0")) {
            server.awaitLog("nbd: export");
            String mapped = Files.readString(log, StandardCharsets.UTF_8);
            assertTrue(mapped.contains(local), "serve nbd did not map " + local + ":\n" + mapped);
            String loaded = Files.readString(tmp.resolve("classes.log"), StandardCharsets.UTF_8);
            assertTrue(loaded.contains("io.strata.nbd.NbdServer source: shared objects file"), "NbdServer not from the archive");
            assertTrue(loaded.contains("picocli.CommandLine$Model$OptionSpec source: shared objects file"), "picocli not from the archive");
        }
        Files.delete(log);
        StrataProcess.Run inspect = StrataProcess.run(tmp, Map.of("STRATA_JAVA_OPTS", "-Xlog:cds=info:file=" + log),
                "inspect", Fixtures.nydusBootstrap().toString());
        assertEquals(0, inspect.code(), inspect.err());
        String mapped = Files.readString(log, StandardCharsets.UTF_8);
        assertTrue(mapped.contains(all) && !mapped.contains(local), "inspect did not map " + all + ":\n" + mapped);
    }

    @Test
    void anArchiveThatDoesNotFitIsIgnoredWithoutAWord() throws Exception {
        // An installed layout (bin/, lib/, cds/) of copies of the built jars, in a directory whose
        // name has a space (the archive's training run lost its class list at it).
        Path home = tmp.resolve("strata install");
        Files.createDirectories(home.resolve("bin"));
        Files.createDirectories(home.resolve("lib"));
        Files.createDirectories(home.resolve("cds"));
        Files.copy(StrataProcess.home().resolve("bin/strata"), home.resolve("bin/strata"), StandardCopyOption.COPY_ATTRIBUTES);
        Path built = StrataProcess.home().resolve("cli/target");
        try (Stream<Path> jars = Stream.concat(Files.list(built).filter(p -> p.getFileName().toString().matches("cli-.*\\.jar")),
                Files.list(built.resolve("lib")))) {
            for (Path jar : jars.toList()) {
                Files.copy(jar, home.resolve("lib").resolve(jar.getFileName()));
            }
        }
        Path archive = home.resolve("cds").resolve(archiveName());
        String version = launch(home, Map.of("STRATA_CDS", "off")).strip();
        assertTrue(version.matches("strata \\S+"), version);

        byte[] garbage = new byte[64 << 10];
        new Random(1).nextBytes(garbage);
        Files.write(archive, garbage);
        assertEquals(version, launch(home, Map.of()).strip(), "with a garbage archive");

        // A real archive for these jars, then one jar changed after it was made.
        assertEquals("", launch(home, Map.of("STRATA_CDS", "create")).replaceAll("strata: class-data archive for Java .*\n", ""));
        assertTrue(Files.size(archive) > garbage.length, "no archive made");
        assertEquals(version, launch(home, Map.of()).strip(), "with the archive");
        Path jar = home.resolve("lib").resolve("picocli-" + picocliVersion(home) + ".jar");
        Files.setLastModifiedTime(jar, FileTime.fromMillis(Files.getLastModifiedTime(jar).toMillis() - 60_000));
        assertEquals(version, launch(home, Map.of()).strip(), "with an archive of a jar since changed");
    }

    private static String picocliVersion(Path home) throws Exception {
        try (Stream<Path> jars = Files.list(home.resolve("lib"))) {
            String name = jars.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("picocli-")).findFirst().orElseThrow();
            return name.substring("picocli-".length(), name.length() - ".jar".length());
        }
    }

    /** {@code HOME/bin/strata --version} (or the archive's creation): everything it printed, stdout and stderr. */
    private String launch(Path home, Map<String, String> env) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(List.of(home.resolve("bin/strata").toString(), "--version")).redirectErrorStream(true);
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().remove("STRATA_JAVA_OPTS");
        pb.environment().remove("STRATA_CDS");
        pb.environment().putAll(env);
        Path out = Files.createTempFile(tmp, "launch", ".out");
        pb.redirectOutput(out.toFile());
        Process p = pb.start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
            throw new AssertionError("bin/strata timed out: " + Files.readString(out));
        }
        String text = Files.readString(out, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), text);
        return text;
    }
}
