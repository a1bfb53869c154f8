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
    /** The types whose picocli converters a start leaves out (a regex over class names, see below). */
    static final String EXCLUDED_CONVERTERS = "java\\.(sql|time)\\..*";

    static {
        // picocli's factory otherwise looks for Groovy's groovy.lang.Closure when it is first used, and
        // a class that is not there makes the class loader open and search every jar of the class
        // path (about 55) before it gives up: tens of milliseconds of every start (docs/benchmarks.md,
        // "Start-up and idle footprint"). Strata's annotations hold no Groovy closures.
        System.setProperty("picocli.disable.closures", "true");
        // Every CommandLine (a start makes four) registers picocli's converters for java.sql and
        // java.time types by reflection: ~20 class lookups and method lookups each, interpreted.
        // No Strata option has such a type (CliIT checks), so they are left out.
        if (System.getProperty("picocli.converters.excludes") == null) {
            System.setProperty("picocli.converters.excludes", EXCLUDED_CONVERTERS);
        }
        // The JDK looks for a SelectorProvider service in every jar of the class path (a ServiceLoader
        // lookup: ~55 jars opened and indexed) when the first socket channel opens, unless this
        // property names one. Linux's is EPollSelectorProvider, what the JDK would choose itself; the
        // property is set only where that class exists and nobody set it.
        String selector = "java.nio.channels.spi.SelectorProvider";
        if (System.getProperty(selector) == null && jdkHas("sun.nio.ch.EPollSelectorProvider")) {
            System.setProperty(selector, "sun.nio.ch.EPollSelectorProvider");
        }
    }

    private static boolean jdkHas(String className) {
        try {
            Class.forName(className, false, null);
            return true;
        } catch (ClassNotFoundException | LinkageError e) {
            return false;
        }
    }

    private Main() {
    }

    public static void main(String[] args) {
        HostLogging.prepare(System.getenv());
        if (args.length > 1 && args[0].equals("serve") && args[1].equals("nbd")) {
            ServerWarmUp.start();
        }
        int status;
        try {
            status = run(args);
        } catch (OutOfMemoryError e) {
            // picocli hands only Exceptions to the handler: an Error would end the JVM with a stack trace.
            System.err.println("strata: out of memory (" + e.getMessage() + "); more heap: STRATA_JAVA_OPTS=-Xmx...");
            status = EXIT_FAILURE;
        }
        System.exit(status);
    }

    static int run(String... args) {
        CommandLine cli = commandLine(args);
        cli.setParameterExceptionHandler((ex, argv) -> {
            CommandLine cmd = ex.getCommandLine();
            PrintWriter err = cmd.getErr();
            String name = cmd.getCommandSpec().qualifiedName(" ");
            String line = cmd.getParent() == null ? name + ": " + usageMessage(ex)
                    : name + ": " + usageMessage(ex) + " (see '" + name + " --help')";
            if (LogFormat.current() == LogFormat.JSON) {
                // Some of these come at run time (an image gone): a JSON log stream gets them as events too.
                org.slf4j.LoggerFactory.getLogger("strata").error(line);
                return EXIT_USAGE;
            }
            err.println(line);
            err.flush();
            return EXIT_USAGE;
        });
        cli.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            PrintWriter err = cmd.getErr();
            String line = cmd.getCommandSpec().qualifiedName(" ") + ": " + describe(ex);
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
     * A bad command line in words. An unknown option is named alone, without its value or the
     * arguments after it: picocli lists every unmatched argument, so a misspelt {@code --creds
     * USER:PASSWORD} would print the password, and a value it took for a positional parameter would
     * be blamed instead of the option.
     */
    static String usageMessage(CommandLine.ParameterException ex) {
        if (ex instanceof CommandLine.UnmatchedArgumentException u && !u.getUnmatched().isEmpty()) {
            for (String arg : u.getUnmatched()) {
                if (arg.startsWith("-") && arg.length() > 1) {
                    int eq = arg.indexOf('=');
                    String option = eq > 0 ? arg.substring(0, eq) : arg;
                    java.util.List<String> near = u.getSuggestions();
                    return "unknown option '" + option + "'" + (near.isEmpty() ? "" : "; did you mean " + String.join(" or ", near) + "?");
                }
            }
            return "unexpected argument '" + u.getUnmatched().get(0) + "'";
        }
        return ex.getMessage();
    }

    /**
     * A failure as one line. The JDK's file-system errors carry only the path as their message
     * ("strata inspect: img/bootstrap"), their kind in the class: say what went wrong with it.
     */
    static String describe(Exception ex) {
        if (ex instanceof java.nio.file.FileSystemException fs && (fs.getReason() == null || fs.getMessage().equals(fs.getFile()))) {
            String what = ex instanceof java.nio.file.NoSuchFileException ? "no such file or directory"
                    : ex instanceof java.nio.file.AccessDeniedException ? "permission denied"
                    : ex instanceof java.nio.file.FileAlreadyExistsException ? "exists already"
                    : ex instanceof java.nio.file.NotDirectoryException ? "not a directory"
                    : ex instanceof java.nio.file.DirectoryNotEmptyException ? "directory not empty"
                    : ex.getClass().getSimpleName();
            return fs.getFile() + (fs.getOtherFile() != null ? " -> " + fs.getOtherFile() : "") + ": " + what;
        }
        return ex.getMessage() == null ? ex.toString() : ex.getMessage();
    }

    /**
     * The command line for {@code args}. picocli builds its model of every command it is given when
     * it is given it (reflection over each option, an annotation proxy for each), and for all of
     * Strata's commands that was the largest part of a server's start-up (docs/benchmarks.md,
     * "Start-up and idle footprint"). So when the arguments name a subcommand after nothing but
     * {@code --log-format}, the root gets only that subcommand (with its own subcommands); help,
     * the version, no command, {@code help} or a name picocli must answer with suggestions get
     * {@link StrataCommand}, the whole tree. Parsing, help and errors of the named command are the
     * same either way: it is the same class under the same root.
     */
    static CommandLine commandLine(String... args) {
        Class<?> named = null;
        for (int i = 0; i < args.length && named == null; i++) {
            String a = args[i];
            if (a.equals("--log-format")) {
                i++; // its value
            } else if (!a.startsWith("--log-format=")) {
                named = a.startsWith("-") ? null : subcommand(a);
                if (named == null) {
                    break;
                }
            }
        }
        if (named == null || named == CommandLine.HelpCommand.class) {
            return new CommandLine(new StrataCommand());
        }
        CommandLine root = new CommandLine(new StrataRoot());
        root.addSubcommand(new CommandLine(named));
        return root;
    }

    /**
     * The subcommand class of {@link StrataCommand} named {@code name}, or null. A switch, not a look
     * at StrataCommand's {@code @Command}: reading that annotation loads every subcommand class it
     * names and parses each one's annotations, and the first annotation read also builds the JDK's
     * annotation proxies: tens of milliseconds of the main thread at every start (docs/benchmarks.md, "Start-up
     * and idle footprint"). Only the branch taken loads its class. {@code CliIT} checks that this
     * answers every name and alias the annotation gives, and nothing else.
     */
    static Class<?> subcommand(String name) {
        switch (name) {
            case "build":
                return BuildCommand.class;
            case "push":
                return PushCommand.class;
            case "inspect":
                return InspectCommand.class;
            case "export":
                return ExportCommand.class;
            case "serve":
                return ServeCommand.class;
            case "ctl":
                return CtlCommand.class;
            case "attach":
                return AttachCommand.class;
            case "help":
                return CommandLine.HelpCommand.class;
            default:
                return null;
        }
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
