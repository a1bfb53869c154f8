package io.strata.cli;

import io.strata.registry.ImagePusher;
import io.strata.registry.ImageReference;
import io.strata.registry.RegistryClient;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "push", mixinStandardHelpOptions = true,
        description = "Upload a 'strata build' output (IMAGE_DIR/bootstrap and IMAGE_DIR/blobs/) to an OCI registry as a "
                + "Nydus image: one layer per data blob, the bootstrap layer, an image config, then the manifest. "
                + "Blobs the registry has are not sent again. Prints REF@DIGEST.")
final class PushCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "IMAGE_DIR", description = "The output directory of 'strata build'.")
    Path imageDir;

    @Parameters(index = "1", paramLabel = "REF", description = "[docker://]HOST[:PORT]/REPO[:TAG] (tag default: latest).")
    String reference;

    @Option(names = "--from", paramLabel = "REPO",
            description = "A repository on the same registry (REPO or HOST/REPO) that may hold the blobs: they are mounted from it, not uploaded (if the registry refuses, they are uploaded).")
    String from;

    @Mixin
    RegistryCliOptions registry;

    @Override
    public Integer call() throws Exception {
        CommandLine cmd = spec.commandLine();
        ImageReference target;
        try {
            target = ImageReference.parse(reference);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cmd, e.getMessage());
        }
        if (target.digest().isPresent()) {
            // The digest is the manifest's, known once it is written (and printed then); one given here
            // was ignored and printed back beside the real one ("...:v1@sha256:000...@sha256:2018...").
            throw new CommandLine.ParameterException(cmd, "push to a tag, not a digest (the manifest's digest is printed after the push): "
                    + reference);
        }
        if (!Files.isDirectory(imageDir)) {
            throw new CommandLine.ParameterException(cmd, "IMAGE_DIR is not a directory: " + imageDir);
        }
        if (!Files.isRegularFile(imageDir.resolve("bootstrap"))) {
            throw new CommandLine.ParameterException(cmd, "IMAGE_DIR is not a strata build output (no bootstrap file): " + imageDir);
        }
        Optional<String> source = Optional.empty();
        if (from != null) {
            ImageReference mountSource;
            try {
                // REPO, or a whole reference (HOST/REPO) as users copy it: a mount stays on one registry.
                mountSource = ImageReference.looksLikeReference(from) ? ImageReference.parse(from) : target.inRepository(from);
            } catch (IllegalArgumentException e) {
                throw new CommandLine.ParameterException(cmd, "--from: " + e.getMessage());
            }
            if (!mountSource.registry().equals(target.registry())) {
                throw new CommandLine.ParameterException(cmd, "--from " + from + " is on " + mountSource.registry() + ", not on "
                        + target.registry() + ": blobs are mounted only from a repository of the same registry");
            }
            source = Optional.of(mountSource.repository());
        }
        RegistryClient client = registry.client(cmd);
        ImagePusher.Result r = new ImagePusher(client, line -> StatusLine.info("push", "push: " + line)).push(imageDir, target, source);
        PrintWriter out = cmd.getOut();
        out.println(target + "@" + r.manifestDigest());
        out.flush();
        return 0;
    }
}
