package io.strata.cli;

import java.io.PrintWriter;
import picocli.CommandLine;

/**
 * Entry point. Bad arguments print one line and exit 2; a failure while working (a malformed image,
 * a missing blob) prints one line and exits 1. No stack traces unless STRATA_DEBUG asks for them
 * ({@link #debugRequested}).
 */
public final class Main {
    public static final int EXIT_FAILURE = 1;
    public static final int EXIT_USAGE = 2;

    private Main() {
    }

    public static void main(String[] args) {
        HostLogging.prepare(System.getenv());
        System.exit(run(args));
    }

    static int run(String... args) {
        CommandLine cli = new CommandLine(new StrataCommand());
        cli.setParameterExceptionHandler((ex, argv) -> {
            CommandLine cmd = ex.getCommandLine();
            PrintWriter err = cmd.getErr();
            String name = cmd.getCommandSpec().qualifiedName(" ");
            err.println(cmd.getParent() == null ? name + ": " + ex.getMessage()
                    : name + ": " + ex.getMessage() + " (see '" + name + " --help')");
            err.flush();
            return EXIT_USAGE;
        });
        cli.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            PrintWriter err = cmd.getErr();
            String msg = ex.getMessage() == null ? ex.toString() : ex.getMessage();
            String line = cmd.getCommandSpec().qualifiedName(" ") + ": " + msg;
            boolean debug = debugRequested(System.getenv("STRATA_DEBUG"));
            if (LogFormat.current() == LogFormat.JSON) {
                // A log shipper reading the JSON lines gets the failure as one of them too.
                org.slf4j.LoggerFactory.getLogger("strata").error(line, debug ? ex : null);
                return EXIT_FAILURE;
            }
            err.println(line);
            if (debug) {
                ex.printStackTrace(err);
            }
            err.flush();
            return EXIT_FAILURE;
        });
        return cli.execute(args);
    }

    /**
     * Stack traces are on when STRATA_DEBUG is set to a non-empty value other than {@code 0} or
     * {@code false} (any case, surrounding blanks ignored): {@code STRATA_DEBUG=} (set but empty), as a
     * shell leaves it after {@code STRATA_DEBUG= cmd} or an unset default, means off.
     */
    static boolean debugRequested(String value) {
        if (value == null) {
            return false;
        }
        String v = value.strip();
        return !v.isEmpty() && !v.equals("0") && !v.equalsIgnoreCase("false");
    }
}
