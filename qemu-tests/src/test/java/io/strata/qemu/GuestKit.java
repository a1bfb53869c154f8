package io.strata.qemu;

import io.strata.core.testing.HostTools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.HashMap;
import java.util.Map;

/**
 * The cached guest kit built by scripts/guest-kit.sh: QEMU 10, the 6.12 kernel and its base
 * initramfs, and bookworm's 6.1 kernel with its own initramfs ({@link #legacy}).
 */
final class GuestKit {
    final Path qemu;
    final Path kernel;
    final Path initramfs;
    final Path cacheDir;
    private final Map<String, String> env;

    private GuestKit(Path qemu, Path kernel, Path initramfs, Path cacheDir, Map<String, String> env) {
        this.qemu = qemu;
        this.kernel = kernel;
        this.initramfs = initramfs;
        this.cacheDir = cacheDir;
        this.env = env;
    }

    /**
     * The same QEMU with Debian bookworm's own 6.1 kernel: older than EROFS's flat multi-blob
     * devices (6.4), so it mounts only the --legacy-kernel layout.
     */
    GuestKit legacy() {
        String k = env.get("legacy_kernel");
        String i = env.get("legacy_initramfs");
        HostTools.require(k != null && i != null && Files.isRegularFile(Paths.get(k)) && Files.isRegularFile(Paths.get(i)),
                "the guest kit has no 6.1 kernel: rerun scripts/guest-kit.sh (as root)");
        return new GuestKit(qemu, Paths.get(k), Paths.get(i), cacheDir, env);
    }

    /**
     * Fails (CI) or skips unless the kit's initramfs carries kernel module {@code name} (its /init
     * loads every module in it): a kit built by an older scripts/guest-kit.sh may lack one a test needs.
     */
    void requireModule(String name) throws IOException {
        byte[] cpio;
        // GZIPInputStream ignores the zeros the kit pads the archive with (to 4 bytes, for the test's cpio).
        try (var in = new java.util.zip.GZIPInputStream(Files.newInputStream(initramfs))) {
            cpio = in.readAllBytes();
        }
        String entry = "modules/" + name + ".ko\0";
        HostTools.require(new String(cpio, java.nio.charset.StandardCharsets.ISO_8859_1).contains(entry),
                "the guest kit's initramfs " + initramfs + " has no " + name + " module: rerun scripts/guest-kit.sh (as root)");
    }

    static Path cacheRoot() {
        return Paths.get(System.getenv().getOrDefault("STRATA_CACHE", "/var/cache/strata"));
    }

    /** The kit, or a test failure under CI / a skip elsewhere when it has not been built. */
    static GuestKit require() throws IOException {
        Path env = cacheRoot().resolve("guest-kit/kit.env");
        HostTools.require(Files.isRegularFile(env), "no guest kit at " + env + ": run scripts/guest-kit.sh (as root)");
        Map<String, String> kv = new HashMap<>();
        for (String line : Files.readAllLines(env)) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                kv.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        GuestKit kit = new GuestKit(Paths.get(kv.get("qemu")), Paths.get(kv.get("kernel")), Paths.get(kv.get("initramfs")),
                cacheRoot(), Map.copyOf(kv));
        HostTools.require(Files.isExecutable(kit.qemu), "QEMU missing at " + kit.qemu + ": run scripts/guest-kit.sh");
        return kit;
    }

    static Path strataHome() {
        String h = System.getenv("STRATA_HOME");
        return h != null ? Paths.get(h) : Paths.get("..").toAbsolutePath().normalize();
    }
}
