package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.Fixtures;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The malloc settings bin/strata gives a server's JVM (docs/benchmarks.md, "Cold read"): glibc asks
 * the kernel for 2 MiB pages for its heaps, where the chunk cache's direct buffers live, unless the
 * caller's GLIBC_TUNABLES says otherwise. Seen in the server process itself (the launcher execs the
 * JVM): glibc's {@code madvise(MADV_HUGEPAGE)} marks a mapping {@code hg} in {@code /proc/PID/smaps}
 * (the malloc heap, from the first allocations of a start on), whatever the system's THP mode.
 */
class ServerMallocIT {
    @TempDir
    Path tmp;

    /** What a started server shows: whether glibc asked for huge pages, and its environment. */
    private record Seen(boolean hugePagesAsked, Map<String, String> env) {
    }

    @Test
    void aServerAsksFor2MiBPagesUnlessTheCallerSaysNo() throws Exception {
        Seen plain = serve(Map.of());
        assertTrue(plain.hugePagesAsked(), "no mapping of the server is madvised for huge pages");
        assertEquals("2", plain.env().get("MALLOC_ARENA_MAX"));
        assertFalse(serve(Map.of("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0")).hugePagesAsked(),
                "the caller's glibc.malloc.hugetlb=0 was overridden");
    }

    @Test
    void theCallersOtherTunablesAreKept() throws Exception {
        Seen seen = serve(Map.of("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=131072", "MALLOC_ARENA_MAX", "4"));
        assertTrue(seen.hugePagesAsked(), "hugetlb was not added to the caller's tunables");
        // glibc rewrites the variable's text in place as it parses it (so /proc shows it cut at the
        // first tunable); what must hold is that the caller's own tunable is still the first.
        assertTrue(seen.env().get("GLIBC_TUNABLES").startsWith("glibc.malloc.trim_threshold=131072"), seen.env().toString());
        assertEquals("4", seen.env().get("MALLOC_ARENA_MAX"));
    }

    /** {@code strata serve nbd} of the fixture, started with {@code env} added (GLIBC_TUNABLES and MALLOC_ARENA_MAX empty unless given). */
    private Seen serve(Map<String, String> env) throws Exception {
        Map<String, String> given = new HashMap<>(env);
        given.putIfAbsent("GLIBC_TUNABLES", "");
        given.putIfAbsent("MALLOC_ARENA_MAX", "");
        String name = "s" + Integer.toHexString(given.hashCode());
        try (StrataProcess.Server server = StrataProcess.start(tmp, name, given, "serve", "nbd",
                Fixtures.nydusBootstrap().toString(), "--socket", tmp.resolve(name + ".sock").toString(),
                "--metrics-interval", "0")) {
            server.awaitLog("nbd: export");
            Path proc = Path.of("/proc", Long.toString(server.process.pid()));
            boolean asked = Files.readAllLines(proc.resolve("smaps"), StandardCharsets.UTF_8).stream()
                    .anyMatch(line -> line.startsWith("VmFlags:") && (" " + line.substring(8) + " ").contains(" hg "));
            Map<String, String> out = new HashMap<>();
            for (String entry : new String(Files.readAllBytes(proc.resolve("environ")), StandardCharsets.UTF_8).split("\0")) {
                int eq = entry.indexOf('=');
                if (eq > 0) {
                    out.put(entry.substring(0, eq), entry.substring(eq + 1));
                }
            }
            return new Seen(asked, out);
        }
    }
}
