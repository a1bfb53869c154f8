package io.strata.dist;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.strata.core.testing.HostTools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The package's prerm and postinst, taken from the built .deb, tell a running systemd what
 * dh_installsystemd's scripts tell it: stop the units when the package is removed (they ran on from
 * deleted jars, their unit files gone), try-restart them after an upgrade (they ran on with the old
 * jars), and nothing else. PID 1 here is not systemd, so each script runs in a mount namespace of its
 * own where /run/systemd/system exists (a tmpfs over /run) and /usr/share is an empty tmpfs (prerm
 * removes /usr/share/strata/cds), with deb-systemd-invoke and systemctl on PATH as scripts that
 * record how they were called.
 */
@Timeout(300)
class MaintainerScriptsIT {
    @TempDir
    Path tmp;

    @Test
    void removalStopsTheUnitsAndAnUpgradeRestartsThoseRunning() throws Exception {
        HostTools.require("root".equals(System.getProperty("user.name")), "a mount namespace needs root");
        HostTools.requireTool("unshare", "util-linux");
        HostTools.requireTool("dpkg-deb", "dpkg");
        Path control = tmp.resolve("control");
        Dist.run(List.of("dpkg-deb", "-e", Dist.built("strata_", "_all.deb").toAbsolutePath().toString(), control.toString()),
                Map.of(), 60, tmp);
        Path stubs = Files.createDirectories(tmp.resolve("stubs"));
        for (String tool : List.of("deb-systemd-invoke", "systemctl")) {
            Path stub = stubs.resolve(tool);
            Files.writeString(stub, "#!/bin/sh\necho \"" + tool + " $*\" >> \"$CALLS\"\n");
            stub.toFile().setExecutable(true);
        }

        assertEquals(List.of("deb-systemd-invoke stop strata-nbd.socket strata-nbd.service strata.service"),
                run(control, "prerm", "remove"), "prerm remove");
        assertEquals(List.of(), run(control, "prerm", "upgrade", "0.2.0"), "prerm before an upgrade: the new postinst restarts");
        assertEquals(List.of("systemctl --system daemon-reload"), run(control, "postinst", "configure"),
                "postinst of a first install: the units are only made known (nothing is enabled or started)");
        assertEquals(List.of("systemctl --system daemon-reload", "deb-systemd-invoke try-restart strata.service strata-nbd.service"),
                run(control, "postinst", "configure", "0.1.0"), "postinst of an upgrade from 0.1.0");
    }

    /** Runs a maintainer script as dpkg would, in a namespace that looks like a systemd host; returns the tools' calls. */
    private List<String> run(Path control, String script, String... args) throws Exception {
        Path calls = tmp.resolve("calls-" + script + "-" + String.join("-", args));
        Files.writeString(calls, "");
        String inner = "mount -t tmpfs none /run && mkdir -p /run/systemd/system && mount -t tmpfs none /usr/share"
                + " && exec \"$0\" \"$@\"";
        List<String> cmd = new java.util.ArrayList<>(List.of("unshare", "--mount", "--propagation", "private", "sh", "-c", inner,
                control.resolve(script).toString()));
        cmd.addAll(List.of(args));
        String path = tmp.resolve("stubs") + ":" + System.getenv().getOrDefault("PATH", "/usr/bin:/bin");
        Dist.run(cmd, Map.of("PATH", path, "CALLS", calls.toString()), 120, tmp);
        return Files.readAllLines(calls, StandardCharsets.UTF_8);
    }
}
