package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs the real launcher, bin/strata, on the JDK the build runs on, as a user would. */
final class StrataProcess {
    /** A finished run: exit code, standard output, standard error. */
    record Run(int code, String out, String err) {
    }

    private StrataProcess() {
    }

    static Path home() {
        String h = System.getenv("STRATA_HOME");
        return h != null ? Paths.get(h) : Paths.get("..").toAbsolutePath().normalize();
    }

    /** Runs {@code bin/strata args} with its output captured under {@code tmp}. */
    static Run run(Path tmp, String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(home().resolve("bin/strata").toString());
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().remove("SOURCE_DATE_EPOCH");
        Path out = tmp.resolve("stdout");
        Path err = tmp.resolve("stderr");
        pb.redirectOutput(out.toFile()).redirectError(err.toFile());
        Process p = pb.start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "strata " + String.join(" ", args) + " timed out");
        return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
    }
}
