package io.strata.builder.testing;

import io.strata.builder.BuildListener;
import io.strata.builder.BuildOptions;
import io.strata.builder.BuildResult;
import io.strata.builder.CompressorSpec;
import io.strata.builder.ImageBuilder;
import io.strata.core.image.DigestAlgorithm;
import java.nio.file.Path;

/** Runs one build in a JVM of its own (for tests that limit the heap): SOURCE OUTDIR COMPRESSOR. */
public final class BuildMain {
    private BuildMain() {
    }

    public static void main(String[] args) throws Exception {
        BuildOptions o = BuildOptions.defaults(0).withCompressor(CompressorSpec.parse(args[2])).withDigest(DigestAlgorithm.SHA256);
        BuildResult r = ImageBuilder.build(Path.of(args[0]), Path.of(args[1]), o, BuildListener.SILENT);
        System.out.println("stored " + r.stored() + " chunks, max heap " + Runtime.getRuntime().maxMemory());
    }
}
