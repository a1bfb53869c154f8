package io.strata.cli;

import io.strata.core.device.FlatDevice;
import io.strata.core.export.DeviceExporter;
import io.strata.core.verity.VerityLayout;
import io.strata.core.verity.VeritysetupArgs;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "export", mixinStandardHelpOptions = true,
        description = "Write the flat block device to a file, optionally with a dm-verity hash tree appended.")
final class ExportCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Mixin
    ImageOptions image;

    @Option(names = {"-o", "--output"}, paramLabel = "FILE", required = true, description = "The file to write.")
    Path output;

    @Option(names = "--verity", paramLabel = "LAYOUT", arity = "0..1", fallbackValue = "nydus",
            preprocessor = LayoutOrImage.class,
            description = "Append a dm-verity tree: 'nydus' (Nydus's layout, the default) or 'veritysetup' "
                    + "(cryptsetup's, checked by 'veritysetup verify').")
    String verity;

    /**
     * {@code --verity} takes the next argument as its layout only when it can be one: picocli's
     * optional value would otherwise swallow the image in {@code --verity IMAGE}. A word that is no
     * file and no reference ({@code --verity md5}) is still taken, to be refused by name. A value
     * attached with '=' is always the layout ({@code --verity=x.y} is refused as a layout, not read
     * as the image).
     */
    static final class LayoutOrImage implements CommandLine.IParameterPreprocessor {
        @Override
        public boolean preprocess(java.util.Stack<String> args, CommandLine.Model.CommandSpec command,
                CommandLine.Model.ArgSpec option, java.util.Map<String, Object> info) {
            if (!" ".equals(info.get("separator"))) {
                return false; // attached: picocli takes it as the option's value
            }
            String next = args.isEmpty() ? null : args.peek();
            boolean named = next != null && (next.equalsIgnoreCase("nydus") || next.equalsIgnoreCase("veritysetup"));
            boolean layout = named || next != null && !next.startsWith("-") && !next.contains("/") && !next.contains(".")
                    && !Files.exists(Path.of(next));
            option.setValue(layout ? args.pop() : "nydus");
            return true;
        }
    }

    @Override
    public Integer call() throws Exception {
        image.registry.check(spec.commandLine());
        VerityLayout layout = null;
        if (verity != null) {
            try {
                layout = VerityLayout.valueOf(verity.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(spec.commandLine(),
                        "--verity must be 'nydus' or 'veritysetup', not '" + verity + "'");
            }
        }
        Path target = checkedOutput(output);
        refuseAnInput(target);
        PrintWriter out = spec.commandLine().getOut();
        DeviceExporter.Result r;
        try (FlatDevice dev = image.open(spec.commandLine());
             ProgressBar bar = ProgressBar.forStderr("export")) {
            r = DeviceExporter.export(dev, target, layout, bar::update);
            bar.finished();
        }
        out.println("wrote " + output + ": " + r.dataBytes() + " bytes of device (" + r.dataBytes() / 4096 + " blocks)"
                + (r.rootHash() == null ? "" : " + " + r.treeBytes() + " bytes of " + verity.toLowerCase(Locale.ROOT)
                + " hash tree"));
        if (r.rootHash() != null) {
            out.println("root hash: " + r.rootHash());
            out.println("hash tree offset: " + r.dataBytes());
            if (layout == VerityLayout.VERITYSETUP) {
                out.println("verify with: " + shellWords(VeritysetupArgs.verify(output, r)));
            }
        }
        out.flush();
        return 0;
    }

    /**
     * The file to write: the output, or the file a symlink there points to (the link stays). The export
     * is written beside it and renamed over it, so anything but a regular file (a block device, a FIFO,
     * /dev/null, a directory) would be replaced, not written: refused, as a usage error, before any work.
     */
    private Path checkedOutput(Path path) throws java.io.IOException {
        CommandLine cmd = spec.commandLine();
        CommandLine.ParseResult parsed = cmd.getParseResult();
        String typed = parsed == null || parsed.matchedOption("-o") == null ? path.toString()
                : parsed.matchedOption("-o").originalStringValues().get(parsed.matchedOption("-o").originalStringValues().size() - 1);
        if (typed.isEmpty() || typed.endsWith("/")) {
            // A Path drops a trailing '/': "-o dir/" wrote a file named dir, where cp and dd refuse.
            throw new CommandLine.ParameterException(cmd, "output '" + typed + "' names no file (give -o DIR/FILE)");
        }
        Path p = path;
        if (Files.isSymbolicLink(p)) {
            if (!Files.exists(p)) {
                throw new CommandLine.ParameterException(cmd, "output " + path + " is a symbolic link to nothing");
            }
            p = p.toRealPath();
        }
        if (Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS) && !Files.isRegularFile(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            throw new CommandLine.ParameterException(cmd, "output " + path + " exists and is not a regular file (export writes a file"
                    + " and renames it into place; a device, FIFO or directory would be replaced, not written)");
        }
        Path parent = p.toAbsolutePath().getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            throw new CommandLine.ParameterException(cmd, "output directory does not exist: " + parent);
        }
        return p;
    }

    /** The words as a shell line: each quoted ('...') unless it is only characters the shell leaves alone. */
    static String shellWords(java.util.List<String> words) {
        StringBuilder b = new StringBuilder();
        for (String w : words) {
            b.append(b.length() == 0 ? "" : " ");
            b.append(!w.isEmpty() && w.matches("[A-Za-z0-9_./:=@%+,-]+") ? w : "'" + w.replace("'", "'\\''") + "'");
        }
        return b.toString();
    }

    /** Refuses an output that is one of the image's own files: the bootstrap, a blob, or the remote cache. */
    private void refuseAnInput(Path target) throws java.io.IOException {
        CommandLine cmd = spec.commandLine();
        if (ImageSource.isReference(image.image)) {
            // Real paths: the cache spelled through a symlink is the cache still.
            Path cacheDir = image.registry.cacheDir;
            Path cache = Files.isDirectory(cacheDir) ? cacheDir.toRealPath() : cacheDir.toAbsolutePath().normalize();
            Path where = target.toAbsolutePath().getParent().toRealPath().resolve(target.getFileName());
            if (where.startsWith(cache)) {
                throw new CommandLine.ParameterException(cmd, "output " + output + " lies in the cache directory " + cache);
            }
            return;
        }
        if (!Files.exists(target)) {
            return;
        }
        Path bootstrap = Path.of(image.image);
        if (Files.exists(bootstrap) && Files.isSameFile(target, bootstrap)) {
            throw new CommandLine.ParameterException(cmd, "output " + output + " is the image's bootstrap");
        }
        Path blobs = image.blobDir != null ? image.blobDir : DeviceSpec.defaultBlobDir(bootstrap);
        if (Files.isDirectory(blobs)) {
            try (var files = Files.list(blobs)) {
                for (Path f : (Iterable<Path>) files::iterator) {
                    if (Files.isSameFile(target, f)) {
                        throw new CommandLine.ParameterException(cmd, "output " + output + " is one of the image's blobs (" + f + ")");
                    }
                }
            }
        }
    }
}
