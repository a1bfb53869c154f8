package io.strata.builder.testing;

import io.strata.builder.BuildException;
import io.strata.builder.BuildListener;
import io.strata.builder.BuildOptions;
import io.strata.builder.BuildResult;
import io.strata.builder.ImageBuilder;
import io.strata.core.image.LegacyBootstrap;
import io.strata.core.image.RafsImage;
import io.strata.core.testing.FuzzImages;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * What the builder's fuzz tests share: a scratch directory per JVM, a small, single-threaded build,
 * and the contract. A source is either built into an image that the core reads back (and can
 * rewrite for old kernels), or refused with a {@link BuildException} that names the source. A
 * RuntimeException thrown by Strata's own code is a bug even when the builder wraps it into a
 * BuildException; one from the tar or JSON library on malformed input is that library's way of
 * saying "malformed" and is accepted once wrapped.
 */
public final class BuildFuzzing {
    /** Small chunks so that a few KiB of input spans several; one thread: one fuzz input at a time. */
    private static final BuildOptions OPTIONS = BuildOptions.defaults(0).withChunkSize(4096).withThreads(1);

    private BuildFuzzing() {
    }

    /** A fresh, empty directory {@code name} in this JVM's scratch directory ({@link FuzzImages#scratchDir}). */
    public static synchronized Path fresh(String name) {
        try {
            Path p = FuzzImages.scratchDir().resolve(name);
            delete(p);
            return Files.createDirectories(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void delete(Path p) {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> all = Files.walk(p)) {
            all.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Builds {@code source} and checks the outcome against the contract. */
    public static void buildAndCheck(Path source) throws IOException {
        Path out = fresh("out");
        BuildResult r;
        try {
            r = ImageBuilder.build(source, out, OPTIONS, BuildListener.SILENT);
        } catch (BuildException e) {
            checkRefusal(e, source);
            return;
        }
        RafsImage image = RafsImage.open(r.bootstrap());
        LegacyBootstrap.rewrite(image);
    }

    static void checkRefusal(BuildException e, Path source) {
        String m = e.getMessage();
        if (m == null || !m.startsWith(source.toString())) {
            throw new AssertionError("build error does not name the source " + source + ": " + m, e);
        }
        for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
            StackTraceElement[] st = t.getStackTrace();
            if (t instanceof RuntimeException && st.length > 0 && st[0].getClassName().startsWith("io.strata.")) {
                throw new AssertionError("a bug in Strata's code surfaced as a build error: " + m, e);
            }
        }
    }
}
