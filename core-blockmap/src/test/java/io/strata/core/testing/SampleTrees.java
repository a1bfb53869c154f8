package io.strata.core.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/** Generated source trees for image tests that want real files without a fixture. */
public final class SampleTrees {
    private SampleTrees() {
    }

    /**
     * {@code files} files under {@code root}, spread over {@code outer} × {@code inner} nested
     * directories ({@code d<i % outer>/e<i % inner>/f<i>.bin}): every tenth 100-300 KB, the others
     * under 12 KB; even ones random (incompressible), odd ones a repeated line (compressible).
     * The same arguments give the same tree.
     */
    public static Path mixed(Path root, int files, int outer, int inner, long seed) throws IOException {
        Random r = new Random(seed);
        for (int i = 0; i < files; i++) {
            Path dir = Files.createDirectories(root.resolve("d" + (i % outer)).resolve("e" + (i % inner)));
            int size = i % 10 == 0 ? 100_000 + r.nextInt(200_000) : r.nextInt(12_000);
            byte[] data = new byte[size];
            if (i % 2 == 0) {
                r.nextBytes(data);
            } else {
                byte[] word = ("line " + i + " of a compressible file\n").getBytes(StandardCharsets.UTF_8);
                for (int j = 0; j < size; j++) {
                    data[j] = word[j % word.length];
                }
            }
            Files.write(dir.resolve("f" + i + ".bin"), data);
        }
        return root;
    }
}
