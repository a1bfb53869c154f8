package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.strata.core.testing.Fixtures;
import io.strata.core.testing.HostTools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Logs that fit the host (issue 11 part 6), through bin/strata: {@code --log-format json} writes one
 * JSON object per line (time, level, logger, message, exception), text lines lose their timestamp
 * when stderr is the systemd journal (JOURNAL_STREAM names it), and a bad format is a bad argument.
 */
@Timeout(180)
class LogFormatIT {
    /** slf4j-simple's timestamp at the start of a text line (simplelogger.properties). */
    private static final Pattern TIMESTAMP = Pattern.compile("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d");
    private static final Set<String> LEVELS = Set.of("TRACE", "DEBUG", "INFO", "WARN", "ERROR");
    /** Strict: no trailing tokens, no duplicate fields, nothing but JSON on a line. */
    private static final ObjectMapper JSON = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    @TempDir
    Path tmp;

    @Test
    void jsonLogsOneObjectPerLineForEveryEventOfAServer() throws Exception {
        HostTools.requireTool("nbdinfo", "libnbd-bin");
        Path socket = tmp.resolve("nbd.sock");
        List<String> lines;
        try (StrataProcess.Server server = start("json", Map.of(), "serve", "nbd", Fixtures.nydusBootstrap().toString(),
                "--socket", socket.toString(), "--log-format", "json")) {
            server.awaitLog("export ''");
            HostTools.run(List.of("nbdinfo", "nbd+unix:///?socket=" + socket));
            server.awaitLog("closed");
            server.close();
            lines = server.log().lines().toList();
        }
        List<String> messages = new ArrayList<>();
        for (String line : lines) {
            JsonNode event = event(line);
            assertFalse(event.has("exception"), line);
            messages.add(event.get("message").asText());
        }
        String all = String.join("\n", messages);
        for (String expected : List.of("listening on unix:" + socket, "export ''", "closed", "stopping on signal", "stopped")) {
            assertTrue(all.contains(expected), "no '" + expected + "' among the events:\n" + String.join("\n", lines));
        }
    }

    @Test
    void aFailureIsOneJsonLineWithItsExceptionWhenDebugging() throws Exception {
        // The broken image's path carries what JSON must escape (a quote, a backslash) and a
        // non-ASCII letter (escaped too), in the message and in the exception's first line.
        Path dir = Files.createDirectories(tmp.resolve("we\"ird\\ dir \u00e9"));
        Path bad = dir.resolve("bad.boot");
        byte[] b = Files.readAllBytes(Fixtures.nydusBootstrap());
        b[1024] = 0;
        Files.write(bad, b);

        StrataProcess.Run plain = StrataProcess.run(tmp, "--log-format", "json", "inspect", bad.toString());
        assertEquals(1, plain.code(), plain.err());
        assertEquals(1, plain.err().strip().lines().count(), plain.err());
        JsonNode failure = event(plain.err().strip());
        assertEquals("ERROR", failure.get("level").asText());
        assertEquals("strata", failure.get("logger").asText());
        assertTrue(failure.get("message").asText().startsWith("strata inspect: " + dir), failure.toString());
        assertTrue(failure.get("message").asText().contains("superblock.magic"), failure.toString());
        assertFalse(failure.has("exception"), "stack traces only with STRATA_DEBUG: " + failure);

        StrataProcess.Run debug = StrataProcess.run(tmp, Map.of("STRATA_DEBUG", "1"), "inspect", "--log-format=json", bad.toString());
        assertEquals(1, debug.code(), debug.err());
        assertEquals(1, debug.err().strip().lines().count(), "the stack trace is inside the line: " + debug.err());
        JsonNode withTrace = event(debug.err().strip());
        String trace = withTrace.get("exception").asText();
        assertTrue(trace.startsWith("io.strata.core.image.ImageFormatException: " + dir), trace);
        assertTrue(trace.contains("\n\tat io.strata."), trace);
    }

    @Test
    void batchCommandsStatusLinesAreJsonEventsToo() throws Exception {
        // build's progress and its warnings, and export's progress, otherwise plain stderr lines.
        Path list = tmp.resolve("prefetch.list");
        Files.writeString(list, "no/such/file\n");
        Path image = tmp.resolve("img");
        StrataProcess.Run build = StrataProcess.run(tmp, "build", StrataProcess.home().resolve("core-blockmap/src/main/java/io/strata/core/os").toString(),
                "-o", image.toString(), "--prefetch", list.toString(), "--log-format", "json");
        assertEquals(0, build.code(), build.err());
        List<JsonNode> events = new ArrayList<>();
        for (String line : build.err().lines().toList()) {
            events.add(event(line));
        }
        assertTrue(events.stream().anyMatch(e -> e.get("level").asText().equals("WARN") && e.get("logger").asText().equals("strata.build")
                && e.get("message").asText().startsWith("strata build: warning: prefetch: 'no/such/file' is not in the image")), build.err());
        assertTrue(events.stream().anyMatch(e -> e.get("logger").asText().equals("strata.build")
                && e.get("message").asText().startsWith("build: 100% (")), build.err());

        StrataProcess.Run export = StrataProcess.run(tmp, "--log-format=json", "export", image.resolve("bootstrap").toString(),
                "-o", tmp.resolve("flat.raw").toString());
        assertEquals(0, export.code(), export.err());
        assertTrue(export.err().lines().map(line -> {
            try {
                return event(line);
            } catch (Exception e) {
                throw new AssertionError(line, e);
            }
        }).anyMatch(e -> e.get("message").asText().startsWith("export: 100% (")), export.err());
    }

    @Test
    void jsonEscapesEveryCharacterJsonForbidsRaw() throws Exception {
        StringBuilder nasty = new StringBuilder("quote \" backslash \\ slash / ");
        for (char c = 0; c < 0x20; c++) {
            nasty.append(c);
        }
        nasty.append("\u007f \u00e9 \u2028 \ud83d\ude00 lone \ud800 low \udc00 end");
        Exception thrown = new IllegalStateException("cause \"x\"\n\tnext");
        String line = JsonLogLine.format(Instant.parse("2026-01-02T03:04:05.678Z"), "WARN", "a.b", nasty.toString(), thrown);
        assertEquals(1, line.lines().count(), line);
        assertTrue(line.chars().allMatch(c -> c >= 0x20 && c < 0x7f), "plain printable ASCII: " + line);
        JsonNode event = event(line);
        assertEquals("2026-01-02T03:04:05.678Z", event.get("time").asText());
        assertEquals("WARN", event.get("level").asText());
        assertEquals("a.b", event.get("logger").asText());
        assertEquals(nasty.toString(), event.get("message").asText());
        assertTrue(event.get("exception").asText().startsWith("java.lang.IllegalStateException: cause \"x\"\n\tnext\n\tat "), line);
    }

    @Test
    void underTheJournalTextLinesCarryNoTimestamp() throws Exception {
        // systemd sets JOURNAL_STREAM to DEVICE:INODE of the journal stream on stderr; here stderr is
        // a file the test names the same way. A JOURNAL_STREAM naming another file (inherited by a
        // process whose stderr went elsewhere) keeps the timestamps.
        Path journal = Files.createFile(tmp.resolve("journal.err"));
        Path other = Files.createFile(tmp.resolve("other"));
        List<String> journalLines = serveBriefly("journal", journal, deviceAndInode(journal));
        List<String> elsewhereLines = serveBriefly("elsewhere", Files.createFile(tmp.resolve("elsewhere.err")), deviceAndInode(other));
        for (String line : journalLines) {
            assertFalse(TIMESTAMP.matcher(line).find(), "a timestamp under the journal: " + line);
            // Each line's syslog priority first, as sd-daemon(3) prefixes it: journalctl -p filters on it.
            assertTrue(line.startsWith("<6>INFO ") || line.startsWith("<4>WARN ") || line.startsWith("<3>ERROR "), line);
        }
        assertTrue(journalLines.stream().anyMatch(l -> l.startsWith("<6>INFO ")), journalLines.toString());
        for (String line : elsewhereLines) {
            assertTrue(TIMESTAMP.matcher(line).find(), "no timestamp with stderr not the journal: " + line);
        }
    }

    /** A bad argument (exit 2) under --log-format json is one JSON event too: a service whose image is gone says so in its JSON log. */
    @Test
    void aBadArgumentIsOneJsonLine() throws Exception {
        Path missing = tmp.resolve("gone/image.boot");
        StrataProcess.Run r = StrataProcess.run(tmp, "--log-format", "json", "serve", "nbd", missing.toString(),
                "--socket", tmp.resolve("x.sock").toString());
        assertEquals(2, r.code(), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        JsonNode e = event(r.err().strip());
        assertEquals("ERROR", e.get("level").asText());
        assertTrue(e.get("message").asText().startsWith("strata serve nbd: ") && e.get("message").asText().contains(missing.toString()), e.toString());
    }

    @Test
    void aBadLogFormatIsABadArgument() throws Exception {
        for (String[] args : List.of(new String[] {"--log-format", "xml", "inspect", Fixtures.nydusBootstrap().toString()},
                new String[] {"serve", "nbd", Fixtures.nydusBootstrap().toString(), "--socket", tmp.resolve("s").toString(), "--log-format=yaml"},
                new String[] {"inspect", Fixtures.nydusBootstrap().toString(), "--log-format"})) {
            StrataProcess.Run r = StrataProcess.run(tmp, args);
            assertEquals(2, r.code(), String.join(" ", args) + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
            assertTrue(r.err().contains("--log-format"), r.err());
        }
    }

    /** Serves the fixture until it has logged its export, stops it, and returns its log lines. */
    private List<String> serveBriefly(String name, Path err, String journalStream) throws Exception {
        Path socket = tmp.resolve(name + ".sock");
        try (StrataProcess.Server server = start(name, err, Map.of("JOURNAL_STREAM", journalStream), "serve", "nbd",
                Fixtures.nydusBootstrap().toString(), "--socket", socket.toString())) {
            server.awaitLog("export ''");
            server.close();
            List<String> lines = server.log().lines().toList();
            assertTrue(lines.size() >= 3, "listening, export, stopping: " + lines);
            return lines;
        }
    }

    private static String deviceAndInode(Path file) throws Exception {
        return Files.getAttribute(file, "unix:dev") + ":" + Files.getAttribute(file, "unix:ino");
    }

    private StrataProcess.Server start(String name, Map<String, String> env, String... args) throws Exception {
        return start(name, tmp.resolve(name + ".err"), env, args);
    }

    /** bin/strata in the background with {@code env} added, its stderr appended to {@code err}. */
    private StrataProcess.Server start(String name, Path err, Map<String, String> env, String... args) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(StrataProcess.home().resolve("bin/strata").toString());
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        pb.environment().remove("STRATA_DEBUG");
        pb.environment().remove("JOURNAL_STREAM");
        pb.environment().putAll(env);
        pb.redirectOutput(tmp.resolve(name + ".out").toFile()).redirectError(ProcessBuilder.Redirect.appendTo(err.toFile()));
        return new StrataProcess.Server(pb.start(), err);
    }

    /** One log line as a JSON object with the fields every event has. */
    private static JsonNode event(String line) throws Exception {
        JsonNode event = JSON.readTree(line);
        assertNotNull(event, line);
        assertTrue(event.isObject(), line);
        Instant.parse(event.get("time").asText());
        assertTrue(LEVELS.contains(event.get("level").asText()), line);
        assertFalse(event.get("logger").asText().isEmpty(), line);
        assertTrue(event.get("message").isTextual(), line);
        for (var names = event.fieldNames(); names.hasNext();) {
            String f = names.next();
            assertTrue(Set.of("time", "level", "logger", "message", "exception").contains(f), "unexpected field " + f + ": " + line);
        }
        return event;
    }
}
