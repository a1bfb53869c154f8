package io.strata.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Fits the logs to where they go, before the first logger exists (issue 11 part 6). Under systemd,
 * with stderr connected to the journal, text lines carry no timestamp (the journal stamps every
 * line itself) and start with their priority as sd-daemon(3) prefixes it ({@code <4>} for a
 * warning), so that {@code journalctl -p warning} finds them. {@code --log-format} (see {@link LogFormat}) is applied later, when it is parsed.
 */
final class HostLogging {
    /** Set when stderr is the journal: text lines then start with their syslog priority ({@link StrataLogger}). */
    static final String JOURNAL_PROPERTY = "strata.log.journal";

    private HostLogging() {
    }

    /** Sets slf4j's system properties; call before anything logs. */
    static void prepare(Map<String, String> env) {
        System.setProperty("slf4j.provider", StrataLogProvider.class.getName());
        // slf4j reports "Attempting to load provider ..." at its INFO level otherwise.
        System.setProperty("slf4j.internal.verbosity", "WARN");
        if (stderrIsJournal(env.get("JOURNAL_STREAM"))) {
            System.setProperty("org.slf4j.simpleLogger.showDateTime", "false");
            System.setProperty(JOURNAL_PROPERTY, "true");
        }
    }

    /**
     * systemd.exec(5): JOURNAL_STREAM is "DEVICE:INODE" of the stream connected to the journal. A
     * process compares it with its own stderr, because the variable is inherited by children whose
     * stderr was redirected elsewhere (a file keeps needing timestamps). /proc/self/fd/2 resolves to
     * stderr's file, pipe or socket, whose device and inode stat reports.
     */
    static boolean stderrIsJournal(String journalStream) {
        if (journalStream == null) {
            return false;
        }
        int colon = journalStream.indexOf(':');
        if (colon <= 0) {
            return false;
        }
        try {
            long device = Long.parseUnsignedLong(journalStream.substring(0, colon));
            long inode = Long.parseUnsignedLong(journalStream.substring(colon + 1));
            Map<String, Object> stat = Files.readAttributes(Path.of("/proc/self/fd/2"), "unix:dev,ino");
            return ((Long) stat.get("dev")) == device && ((Long) stat.get("ino")) == inode;
        } catch (NumberFormatException | IOException | UnsupportedOperationException e) {
            return false;
        }
    }
}
