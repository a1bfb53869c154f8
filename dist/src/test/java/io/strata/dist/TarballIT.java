package io.strata.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * strata-VERSION.tar.gz (issue 11 part 3): unpacked anywhere, its bin/strata runs from its lib/, on
 * the JDK the build runs on, and its man pages and completion are where a prefix install expects them.
 */
class TarballIT {
    @TempDir
    Path tmp;

    @Test
    void unpacksToALayoutWhoseLauncherRuns() throws Exception {
        HostTools.requireTool("tar", "tar");
        HostTools.requireTool("man", "man-db");
        Path tarball = Dist.built("strata-", ".tar.gz");
        assertEquals("strata-" + Dist.version() + ".tar.gz", tarball.getFileName().toString());
        Dist.run(List.of("tar", "-xzf", tarball.toString(), "-C", tmp.toString()), Map.of(), 60, tmp);
        Path home = tmp.resolve("strata-" + Dist.version());
        assertTrue(Files.isExecutable(home.resolve("bin/strata")), "bin/strata executable");
        assertTrue(Files.isRegularFile(home.resolve("lib/cli-" + Dist.version() + ".jar")), "the cli jar in lib/");
        assertTrue(Files.isRegularFile(home.resolve("share/bash-completion/completions/strata")), "bash completion");
        for (String unit : List.of("strata.service", "strata-nbd.socket", "strata-nbd.service")) {
            assertTrue(Files.isRegularFile(home.resolve("share/strata/systemd/" + unit)), unit);
        }
        try (var pages = Files.list(home.resolve("share/man/man1"))) {
            assertTrue(pages.anyMatch(p -> p.getFileName().toString().equals("strata-serve-nbd.1")), "strata-serve-nbd.1");
        }

        // Run from elsewhere through a symlink, as a user's ~/bin/strata -> .../bin/strata would be.
        Path link = tmp.resolve("strata-link");
        Files.createSymbolicLink(link, home.resolve("bin/strata"));
        Map<String, String> env = Map.of("JAVA_HOME", System.getProperty("java.home"), "STRATA_JAVA_OPTS", "", "STRATA_DEBUG", "");
        assertEquals("strata " + Dist.version(), Dist.run(List.of(link.toString(), "--version"), env, 60, tmp).strip());

        // The whole read path from lib/'s jars: an export whose sha256 Nydus's own test expects.
        Path export = tmp.resolve("export.raw");
        Dist.run(List.of(link.toString(), "export", Fixtures.nydusBootstrap().toString(), "-o", export.toString(), "--verity=nydus"),
                env, 120, tmp);
        assertEquals(Fixtures.NYDUS_VERITY_EXPORT_SHA256,
                HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(export))));

        // man finds the pages under the prefix's share/man by MANPATH.
        String page = Dist.run(List.of("man", "-w", "strata-serve-nbd"), Map.of("MANPATH", home.resolve("share/man").toString()), 60, tmp);
        assertEquals(home.resolve("share/man/man1/strata-serve-nbd.1").toString(), page.strip());
    }
}
