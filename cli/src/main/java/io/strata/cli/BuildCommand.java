package io.strata.cli;

import io.strata.builder.BuildListener;
import io.strata.builder.BuildOptions;
import io.strata.builder.BuildResult;
import io.strata.builder.CompressorSpec;
import io.strata.builder.ImageBuilder;
import io.strata.core.image.DigestAlgorithm;
import io.strata.core.image.RafsImage;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "build", mixinStandardHelpOptions = true,
        description = "Build a Nydus RAFS v6 image (OUTDIR/bootstrap and OUTDIR/blobs/<blob id>) from a directory, "
                + "a tar (plain, gzip or zstd) or an OCI image layout.")
final class BuildCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "SOURCE", description = "A directory, a tar file, or an OCI image layout directory (DIR:TAG for one of its tags).")
    Path source;

    @Option(names = {"-o", "--output"}, paramLabel = "OUTDIR", required = true,
            description = "Where to write the bootstrap and blobs/ (created if missing).")
    Path output;

    @Option(names = "--compressor", paramLabel = "ALGO", defaultValue = "zstd",
            description = "Chunk compression: none, lz4, zstd[:LEVEL] (default: ${DEFAULT-VALUE}, level "
                    + CompressorSpec.DEFAULT_ZSTD_LEVEL + ").")
    String compressor;

    @Option(names = "--chunk-size", paramLabel = "SIZE", converter = SizeConverter.class, defaultValue = "1M",
            description = "Chunk size, a power of two from 4K to 16M (default: ${DEFAULT-VALUE}).")
    long chunkSize;

    @Option(names = "--digest", paramLabel = "ALGO", defaultValue = "blake3",
            description = "Chunk digest: blake3 or sha256 (default: ${DEFAULT-VALUE}).")
    String digest;

    @Option(names = "--legacy-kernel",
            description = "Also check that the image can be served to kernels 5.15-6.3 (serve or export it with --legacy-kernel).")
    boolean legacyKernel;

    @Option(names = "--source-date-epoch", paramLabel = "SECONDS",
            description = "Build time for reproducible output (default: $SOURCE_DATE_EPOCH, else now).")
    Long sourceDateEpoch;

    @Option(names = "--prefetch", paramLabel = "LISTFILE",
            description = "Write a RAFS prefetch table: one path per line from the image root, files or directories "
                    + "(everything below). Paths the image lacks are left out with a warning, as nydus-image does.")
    Path prefetchList;

    @Option(names = "--threads", paramLabel = "N", description = "Chunk digest/compression threads (default: one per CPU).")
    Integer threads;

    @Override
    public Integer call() throws Exception {
        BuildOptions options = options();
        CommandLine cmd = spec.commandLine();
        if (!Files.exists(source) && io.strata.builder.source.OciLayoutSource.tagged(source) == null) {
            throw new CommandLine.ParameterException(cmd, "source not found: " + source);
        }
        if (Files.exists(source) && !Files.isDirectory(source) && !Files.isRegularFile(source)) {
            throw new CommandLine.ParameterException(cmd, "source " + source + " is not a directory, tar file or OCI image layout");
        }
        if (Files.isRegularFile(source) && isErofsImage(source)) {
            throw new CommandLine.ParameterException(cmd, "source " + source + " is an EROFS image (a bootstrap?), not a tar file:"
                    + " build takes a directory, a tar file or an OCI image layout");
        }
        if (output.toString().isEmpty()) {
            throw new CommandLine.ParameterException(cmd, "-o names no directory");
        }
        if (Files.isDirectory(source) && Files.isDirectory(output) && Files.isSameFile(source, output)) {
            // The bootstrap and blobs/ would land among the files being read (and in the image).
            throw new CommandLine.ParameterException(cmd, "-o " + output + " is the source directory itself: give another directory");
        }
        PrintWriter out = spec.commandLine().getOut();
        BuildResult r;
        // The outermost directory of -o this build creates, if any: a failed build removes what it made.
        Path firstMade = null;
        for (Path p = output.toAbsolutePath().normalize(); p != null && !Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                p = p.getParent()) {
            firstMade = p;
        }
        boolean hadBlobs = Files.exists(output.resolve("blobs"));
        try (ProgressBar bar = ProgressBar.forStderr("build")) {
            r = ImageBuilder.build(source, output, options, new BuildListener() {
                @Override
                public void progress(long done, long total) {
                    bar.update(done, total);
                }

                @Override
                public void warning(String message) {
                    StatusLine.warn("build", "strata build: warning: " + message);
                }
            });
            bar.finished();
        } catch (Exception | Error e) {
            // A failed build leaves nothing of its own behind: the directories it made, if still empty.
            if (!hadBlobs) {
                deleteIfEmpty(output.resolve("blobs"));
            }
            for (Path p = output.toAbsolutePath().normalize(); firstMade != null && p != null; p = p.getParent()) {
                deleteIfEmpty(p);
                if (p.equals(firstMade)) {
                    break;
                }
            }
            throw e;
        }
        out.println("wrote " + r.bootstrap() + ": " + r.bootstrapBytes() + " bytes, " + r.inodes() + " inodes; flat device "
                + r.flatDeviceBytes() + " bytes (" + r.flatDeviceBytes() / RafsImage.BLOCK_SIZE + " blocks)");
        for (String id : r.blobIds()) {
            out.println("blob " + id + ": " + Files.size(output.resolve("blobs").resolve(id)) + " bytes");
        }
        out.printf(Locale.ROOT, "chunks: %d read, %d holes, %d deduplicated, %d stored; %.1f MiB of data stored as %.1f MiB (%s)%n",
                r.chunks(), r.holes(), r.deduplicated(), r.stored(), r.bytesIn() / 1048576.0, r.bytesStored() / 1048576.0,
                options.compressor());
        if (options.legacyKernel()) {
            out.println("kernels 5.15-6.3: serve or export with --legacy-kernel (checked: the rewritten bootstrap is valid)");
        }
        out.flush();
        return 0;
    }

    private BuildOptions options() {
        CommandLine cmd = spec.commandLine();
        CompressorSpec c;
        try {
            c = CompressorSpec.parse(compressor);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cmd, "--compressor: " + e.getMessage());
        }
        DigestAlgorithm d;
        try {
            d = DigestAlgorithm.valueOf(digest.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cmd, "--digest must be blake3 or sha256, not '" + digest + "'");
        }
        long buildTime = buildTime(cmd);
        int n = threads != null ? threads : Runtime.getRuntime().availableProcessors();
        java.util.List<String> prefetch = java.util.List.of();
        if (prefetchList != null) {
            String problem = io.strata.core.os.InputFiles.problem(prefetchList);
            if (problem != null) {
                throw new CommandLine.ParameterException(cmd, "--prefetch: " + prefetchList + " " + problem);
            }
            try {
                prefetch = Files.readAllLines(prefetchList);
            } catch (java.io.IOException e) {
                throw new CommandLine.ParameterException(cmd, "--prefetch: cannot read " + Main.describe(e));
            }
        }
        try {
            return new BuildOptions(c, chunkSize, d, buildTime, n, legacyKernel, prefetch);
        } catch (IllegalArgumentException e) {
            String opt = e.getMessage().startsWith("chunk size") ? "--chunk-size" : e.getMessage().startsWith("threads")
                    ? "--threads" : sourceDateEpoch != null ? "--source-date-epoch" : "SOURCE_DATE_EPOCH";
            throw new CommandLine.ParameterException(cmd, opt + ": " + e.getMessage());
        }
    }

    private static void deleteIfEmpty(Path dir) {
        try {
            Files.deleteIfExists(dir);
        } catch (java.io.IOException notEmptyOrGone) {
            // something else is in it: not ours to remove
        }
    }

    /** Whether {@code file} has an EROFS superblock where a bootstrap has it: a tar's first block never does. */
    private static boolean isErofsImage(java.nio.file.Path file) throws java.io.IOException {
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file)) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            ch.read(b, io.strata.core.image.ErofsSuperblock.OFFSET);
            return b.position() == 4 && b.getInt(0) == io.strata.core.image.ErofsSuperblock.MAGIC;
        }
    }

    private long buildTime(CommandLine cmd) {
        if (sourceDateEpoch != null) {
            return sourceDateEpoch;
        }
        String env = System.getenv("SOURCE_DATE_EPOCH");
        if (env != null && !env.isBlank()) {
            try {
                return Long.parseLong(env.trim());
            } catch (NumberFormatException e) {
                throw new CommandLine.ParameterException(cmd, "SOURCE_DATE_EPOCH is not a number: '" + env + "'");
            }
        }
        return System.currentTimeMillis() / 1000;
    }
}
