package io.strata.builder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.strata.builder.testing.BuildMain;
import io.strata.core.image.RafsImage;
import io.strata.core.testing.HostTools;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Memory stays bounded whatever the input: a 1 GiB file of distinct chunks, as a directory and as a
 * tar, builds in a JVM whose heap is 160 MiB (the chunk pipeline keeps at most 64 MiB in flight).
 */
class BoundedMemoryTest {
    private static final int CHUNKS = 1024;

    @TempDir
    Path tmp;

    private static void bigFile(Path file) throws Exception {
        byte[] chunk = new byte[1 << 20];
        for (int i = 0; i < chunk.length; i++) {
            chunk[i] = (byte) ('a' + i % 23);
        }
        try (OutputStream o = Files.newOutputStream(file)) {
            for (int c = 0; c < CHUNKS; c++) {
                ByteBuffer.wrap(chunk).putInt(0, c).putInt(4096, ~c); // every chunk distinct
                o.write(chunk);
            }
        }
    }

    private void buildWithSmallHeap(Path source, Path out) throws Exception {
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx160m",
                "-Djnr.ffi.x86asm.enabled=false", "-cp", System.getProperty("java.class.path"), BuildMain.class.getName(),
                source.toString(), out.toString(), "lz4");
        Path log = tmp.resolve(out.getFileName() + ".log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
            fail("build timed out: " + Files.readString(log));
        }
        String output = Files.readString(log);
        assertEquals(0, p.exitValue(), output);
        assertTrue(output.contains("stored " + CHUNKS + " chunks"), output);
        RafsImage image = RafsImage.open(out.resolve("bootstrap"));
        assertEquals(CHUNKS, image.blobs().get(0).chunkCount());
    }

    // ~12 s idle: two builds of 1 GiB in child JVMs (each bounded at 120 s).
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    @Test
    void gibibyteDirectoryAndTarBuildIn160MiBOfHeap() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("src"));
        bigFile(dir.resolve("big.bin"));
        buildWithSmallHeap(dir, tmp.resolve("out-dir"));
        Path tar = tmp.resolve("big.tar");
        HostTools.run(List.of("tar", "-C", dir.toString(), "-cf", tar.toString(), "big.bin"));
        Files.delete(dir.resolve("big.bin"));
        buildWithSmallHeap(tar, tmp.resolve("out-tar"));
    }
}
