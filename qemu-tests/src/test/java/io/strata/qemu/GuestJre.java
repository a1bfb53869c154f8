package io.strata.qemu;

import io.strata.core.testing.HostTools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * A JVM for the guest: a jlink image of the modules Strata needs, the host's shared libraries it
 * links (busybox's initramfs has no glibc), and Strata's jars. The JRE and libraries are cached
 * outside the source tree; {@link #command} starts it through the copied dynamic loader.
 */
final class GuestJre {
    /** From {@code jdeps --print-module-deps} over the CLI and its libraries (java.net.http: the registry client). */
    static final String MODULES = "java.base,java.desktop,java.management,java.naming,java.net.http,java.sql,jdk.unsupported";

    private GuestJre() {
    }

    /** Fills {@code root} with java/ (jlink image), hostlib/ (loader and libraries), strata/ (jars). */
    static void populate(Path root) throws IOException {
        Path jre = jlinkImage();
        HostTools.run(List.of("cp", "-a", jre.toString(), root.resolve("java").toString()));
        Path hostlib = Files.createDirectories(root.resolve("hostlib"));
        Set<String> libs = new LinkedHashSet<>();
        try (Stream<Path> s = Files.walk(jre)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                String name = p.getFileName().toString();
                if (Files.isRegularFile(p) && (name.endsWith(".so") || p.endsWith("bin/java"))) {
                    for (String line : HostTools.execute(List.of("ldd", p.toString())).output().split("\n")) {
                        String t = line.trim();
                        int arrow = t.indexOf("=> /");
                        if (arrow >= 0) {
                            libs.add(t.substring(arrow + 3, t.indexOf(' ', arrow + 3) < 0 ? t.length() : t.indexOf(' ', arrow + 3)));
                        } else if (t.startsWith("/")) {
                            libs.add(t.split(" ")[0]);
                        }
                    }
                }
            }
        }
        // Libraries the JNI code in Strata's jars (zstd-jni, lz4-java, jffi) links besides the JRE's.
        for (String extra : List.of("libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
                "libz.so.1", "libstdc++.so.6", "libgcc_s.so.1")) {
            Path p = Path.of("/lib/x86_64-linux-gnu", extra);
            if (Files.exists(p)) {
                libs.add(p.toString());
            }
        }
        for (String lib : libs) {
            Path src = Path.of(lib);
            if (Files.exists(src) && !lib.contains("libjvm") && !lib.startsWith(jre.toString())) {
                // Copied under the name the binaries ask for, with the symlink's target content.
                Files.copy(src, hostlib.resolve(src.getFileName()), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        Path strata = Files.createDirectories(root.resolve("strata"));
        Path cliTarget = GuestKit.strataHome().resolve("cli/target");
        try (Stream<Path> s = Files.list(cliTarget.resolve("lib"))) {
            for (Path p : (Iterable<Path>) s::iterator) {
                Files.copy(p, strata.resolve(p.getFileName()));
            }
        }
        try (Stream<Path> s = Files.list(cliTarget)) {
            for (Path p : (Iterable<Path>) s.filter(p -> p.getFileName().toString().matches("cli-.*\\.jar"))::iterator) {
                Files.copy(p, strata.resolve(p.getFileName()));
            }
        }
    }

    /** The jlink image for the running JDK and {@link #MODULES}, built once and cached. */
    private static Path jlinkImage() throws IOException {
        String home = System.getProperty("java.home");
        // The module list is part of the key: an image cached before a module was added lacks it.
        String version = System.getProperty("java.version") + "-" + Integer.toHexString(MODULES.hashCode());
        Path cached = GuestKit.cacheRoot().resolve("guest-jre/" + version);
        if (Files.isExecutable(cached.resolve("bin/java"))) {
            return cached;
        }
        Files.createDirectories(cached.getParent());
        Path tmp = cached.resolveSibling(version + ".tmp");
        HostTools.run(List.of("rm", "-rf", tmp.toString()));
        HostTools.run(List.of(home + "/bin/jlink", "--add-modules", MODULES, "--strip-debug", "--no-header-files",
                "--no-man-pages", "--output", tmp.toString()));
        Files.move(tmp, cached);
        return cached;
    }

    /** The guest shell command that starts Strata's CLI from a disk mounted at {@code mount}. */
    static String command(String mount) {
        String loader = mount + "/hostlib/ld-linux-x86-64.so.2";
        return loader + " --library-path " + mount + "/hostlib " + mount + "/java/bin/java"
                + " -Djnr.ffi.x86asm.enabled=false -Djava.io.tmpdir=/tmp"
                + " --add-exports java.base/sun.nio.ch=ALL-UNNAMED --add-exports java.base/jdk.internal.ref=ALL-UNNAMED"
                + " --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED"
                + " --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.lang.reflect=ALL-UNNAMED"
                + " --add-opens java.base/java.io=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED"
                + " --enable-native-access=ALL-UNNAMED -Dchronicle.analytics.disable=true -Dchronicle.disk.monitor.disable=true"
                + (Runtime.version().feature() >= 23 ? " --sun-misc-unsafe-memory-access=allow" : "")
                + " -XX:TieredStopAtLevel=1 -Xshare:off -cp '" + mount + "/strata/*' io.strata.cli.Main";
    }
}
