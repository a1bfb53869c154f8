package io.strata.builder;

import io.strata.builder.data.BlobSet;
import io.strata.builder.data.ChunkPipeline;
import io.strata.builder.data.ChunkRegistry;
import io.strata.builder.data.FinishedBlob;
import io.strata.builder.erofs.BootstrapWriter;
import io.strata.builder.output.OutputDirectory;
import io.strata.builder.source.BuildContext;
import io.strata.builder.source.ImageSource;
import io.strata.builder.source.Sources;
import io.strata.builder.tree.FsTree;
import io.strata.core.image.BlobTrailerReader;
import io.strata.core.image.ImageFormatException;
import io.strata.core.image.LegacyBootstrap;
import io.strata.core.image.RafsImage;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * Builds a Nydus RAFS v6 image from a directory, a tar or an OCI image layout: the sources fill the
 * tree and stream file data through the chunk pipeline into one blob per layer; then the bootstrap
 * is written, read back with the core's own {@link RafsImage} (the same reader every image goes
 * through), each blob's trailer with {@link BlobTrailerReader} (as Nydus's tools find it), and
 * everything is published at once.
 *
 * <p>{@code --legacy-kernel}: the builder writes the one canonical bootstrap and checks that the
 * core's {@link LegacyBootstrap} can rewrite it (every chunk's absolute address fits 32 bits, the
 * tree walks); {@code strata export/serve --legacy-kernel} do that rewrite when serving. A second,
 * rewritten bootstrap on disk would have a blob table but no device table, which no reader (Strata's
 * or Nydus's) accepts as an image, and would be a second copy to keep in step.
 */
public final class ImageBuilder {
    private ImageBuilder() {
    }

    /** Reads a blob's trailer back with the core's reader, as Nydus's tools would find it. */
    private static void checkTrailer(FinishedBlob b) throws IOException {
        try (FileChannel ch = FileChannel.open(b.file(), StandardOpenOption.READ)) {
            BlobTrailerReader.Trailer t = BlobTrailerReader.read(b.file(), ch);
            // compressed_size is the whole file, trailer included (as Nydus writes it), so the chunk data is less.
            if (t.chunks().size() != b.chunkCount() || t.dataSize() >= b.compressedSize()) {
                throw new IllegalStateException("the builder wrote blob " + b.id() + " whose trailer lists " + t.chunks().size()
                        + " chunks in " + t.dataSize() + " bytes of data, not " + b.chunkCount() + " in a blob of " + b.compressedSize());
            }
        } catch (ImageFormatException e) {
            throw new IllegalStateException("the builder wrote a blob trailer its own reader rejects: " + e.getMessage(), e);
        }
    }

    public static BuildResult build(Path source, Path outDir, BuildOptions options, BuildListener listener)
            throws IOException {
        ImageSource src = Sources.open(source, outDir);
        try (OutputDirectory out = OutputDirectory.open(outDir)) {
            ChunkRegistry registry = new ChunkRegistry();
            BlobSet blobs = new BlobSet(out::newTempBlob, options.compressor());
            FsTree tree = new FsTree(options.buildTime());
            ChunkPipeline.Stats stats;
            try (ChunkPipeline pipeline = new ChunkPipeline(options, registry, blobs)) {
                src.addTo(new BuildContext(tree, pipeline, options, listener));
                stats = pipeline.stats();
            }
            List<FinishedBlob> finished = blobs.finished();
            for (FinishedBlob b : finished) {
                checkTrailer(b);
            }
            out.startSync(finished);
            Path boot = out.newTempBootstrap();
            BootstrapWriter.Written w;
            try {
                w = BootstrapWriter.write(boot, tree, finished, registry, options, listener);
            } catch (BuildException e) {
                // The layout refuses what no reader of the source checked (a symlink with an empty target
                // in a tar, found by TarSourceFuzzTest); its message names the path in the image only.
                throw new BuildException(source + ": " + e.getMessage(), e);
            }
            RafsImage image;
            try {
                image = RafsImage.open(boot);
                if (options.legacyKernel()) {
                    LegacyBootstrap.rewrite(image);
                }
            } catch (ImageFormatException e) {
                throw new IllegalStateException("the builder wrote a bootstrap its own reader rejects: " + e.getMessage(), e);
            }
            out.commit(finished, boot);
            return new BuildResult(out.bootstrap(), finished.stream().map(FinishedBlob::id).toList(), w.inodes(),
                    stats.chunks, stats.holes, stats.deduplicated, stats.stored, stats.bytesIn, stats.bytesStored, w.bytes(),
                    image.flatDeviceBlocks() * RafsImage.BLOCK_SIZE);
        }
    }
}
