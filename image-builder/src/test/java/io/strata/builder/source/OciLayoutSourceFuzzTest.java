package io.strata.builder.source;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.strata.builder.testing.BuildFuzzing;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * OCI image layouts through {@link OciLayoutSource} and the whole build. A fuzz input describes a
 * layout as sections separated by a line {@code ==}: the index.json text, the manifest text, then
 * each layer's bytes. In the two texts {@code $L0}, {@code $Z0} (and $L1, $Z1, ...) become layer i's
 * digest and size, {@code $M} and {@code $N} the manifest's: so mutations reach the JSON and tar
 * parsers instead of all ending at a digest mismatch (the placeholders can be mutated away, which
 * tests that check too). Seeds: {@code OciLayoutSourceFuzzTestInputs/fuzz/} (layouts as OciWriter
 * writes them, with gzip, zstd and plain layers and whiteouts across layers).
 */
class OciLayoutSourceFuzzTest {
    private static final byte[] SEPARATOR = "\n==\n".getBytes(StandardCharsets.US_ASCII);
    private static final int MAX_LAYERS = 8;

    @FuzzTest
    void fuzz(byte[] input) throws IOException {
        List<byte[]> sections = split(input);
        Path dir = BuildFuzzing.fresh("oci");
        Path blobs = Files.createDirectories(dir.resolve("blobs/sha256"));
        Files.writeString(dir.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        String index = sections.isEmpty() ? "" : new String(sections.get(0), StandardCharsets.UTF_8);
        String manifest = sections.size() < 2 ? "" : new String(sections.get(1), StandardCharsets.UTF_8);
        for (int i = Math.min(sections.size(), MAX_LAYERS + 2) - 1; i >= 2; i--) {
            byte[] layer = sections.get(i);
            String digest = blob(blobs, layer);
            String n = Integer.toString(i - 2);
            manifest = manifest.replace("$L" + n, digest).replace("$Z" + n, Integer.toString(layer.length));
            index = index.replace("$L" + n, digest).replace("$Z" + n, Integer.toString(layer.length));
        }
        byte[] m = manifest.getBytes(StandardCharsets.UTF_8);
        index = index.replace("$M", blob(blobs, m)).replace("$N", Integer.toString(m.length));
        Files.writeString(dir.resolve("index.json"), index);
        BuildFuzzing.buildAndCheck(dir);
    }

    private static String blob(Path blobs, byte[] data) throws IOException {
        try {
            String hex = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
            Files.write(blobs.resolve(hex), data);
            return "sha256:" + hex;
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static List<byte[]> split(byte[] in) {
        List<byte[]> out = new ArrayList<>();
        int start = 0;
        outer:
        for (int i = 0; i + SEPARATOR.length <= in.length; i++) {
            for (int k = 0; k < SEPARATOR.length; k++) {
                if (in[i + k] != SEPARATOR[k]) {
                    continue outer;
                }
            }
            out.add(java.util.Arrays.copyOfRange(in, start, i));
            start = i + SEPARATOR.length;
            i = start - 1;
        }
        out.add(java.util.Arrays.copyOfRange(in, start, in.length));
        return out;
    }
}
