package io.strata.cli;

import java.io.PrintWriter;
import picocli.CommandLine;

/**
 * Entry point. Bad arguments print one line and exit 2; a failure while working (a malformed image,
 * a missing blob) prints one line and exits 1. No stack traces unless STRATA_DEBUG is set.
 */
public final class Main {
    public static final int EXIT_FAILURE = 1;
    public static final int EXIT_USAGE = 2;

    private Main() {
    }

    public static void main(String[] args) {
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
            err.println(cmd.getCommandSpec().qualifiedName(" ") + ": " + msg);
            if (System.getenv("STRATA_DEBUG") != null) {
                ex.printStackTrace(err);
            }
            err.flush();
            return EXIT_FAILURE;
        });
        return cli.execute(args);
    }
}
