package io.strata.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.strata.core.image.ImageReport;
import io.strata.core.image.RafsImage;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Show a bootstrap's superblock, its blobs with their mapped_blkaddr and sizes, and chunk statistics.")
final class InspectCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "IMAGE",
            description = "The RAFS v6 bootstrap, or an image reference [docker://]HOST[:PORT]/REPO[:TAG|@sha256:DIGEST] (its bootstrap is fetched).")
    String image;

    @CommandLine.Mixin
    RemoteImageOptions registry;

    @Option(names = "--json", description = "Print JSON instead of text.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        registry.check(spec.commandLine());
        Path bootstrap = ImageSource.open(spec.commandLine(), image, null, registry).bootstrap();
        Map<String, Object> report = ImageReport.of(RafsImage.open(bootstrap));
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.println(new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValueAsString(report));
        } else {
            printText(out, report, "");
        }
        out.flush();
        return 0;
    }

    @SuppressWarnings("unchecked")
    private static void printText(PrintWriter out, Map<String, Object> map, String indent) {
        for (Map.Entry<String, Object> e : map.entrySet()) {
            Object v = e.getValue();
            if (v instanceof Map) {
                out.println(indent + e.getKey() + ":");
                printText(out, (Map<String, Object>) v, indent + "  ");
            } else if (v instanceof List && !((List<?>) v).isEmpty() && ((List<?>) v).get(0) instanceof Map) {
                out.println(indent + e.getKey() + ":");
                for (Object item : (List<?>) v) {
                    out.println(indent + "  -");
                    printText(out, (Map<String, Object>) item, indent + "    ");
                }
            } else {
                // Names come from the image: a control character (an escape sequence, a newline) is
                // shown as \xNN, not sent to the terminal or made into a line of its own.
                out.println(indent + e.getKey() + ": " + io.strata.core.image.ImageFormatException.oneLine(String.valueOf(v)));
            }
        }
    }
}
