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
            description = "Append a dm-verity tree: 'nydus' (Nydus's layout, the default) or 'veritysetup' "
                    + "(cryptsetup's, checked by 'veritysetup verify').")
    String verity;

    @Override
    public Integer call() throws Exception {
        VerityLayout layout = null;
        if (verity != null) {
            try {
                layout = VerityLayout.valueOf(verity.toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(spec.commandLine(),
                        "--verity must be 'nydus' or 'veritysetup', not '" + verity + "'");
            }
        }
        Path parent = output.toAbsolutePath().getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "output directory does not exist: " + parent);
        }
        PrintWriter out = spec.commandLine().getOut();
        DeviceExporter.Result r;
        try (FlatDevice dev = image.open(spec.commandLine());
             ProgressBar bar = ProgressBar.forStderr("export")) {
            r = DeviceExporter.export(dev, output, layout, bar::update);
        }
        out.println("wrote " + output + ": " + r.dataBytes() + " bytes of device (" + r.dataBytes() / 4096 + " blocks)"
                + (r.rootHash() == null ? "" : " + " + r.treeBytes() + " bytes of " + verity.toLowerCase(Locale.ROOT)
                + " hash tree"));
        if (r.rootHash() != null) {
            out.println("root hash: " + r.rootHash());
            out.println("hash tree offset: " + r.dataBytes());
            if (layout == VerityLayout.VERITYSETUP) {
                out.println("verify with: " + String.join(" ", VeritysetupArgs.verify(output, r)));
            }
        }
        out.flush();
        return 0;
    }
}
