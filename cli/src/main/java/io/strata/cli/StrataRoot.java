package io.strata.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code strata} command itself, its options and help, without its subcommands:
 * {@link StrataCommand} adds them all; {@link Main#commandLine} adds only the one a command line
 * names, so a start builds picocli's model of one command instead of all (see there).
 */
@Command(name = "strata",
        mixinStandardHelpOptions = true,
        versionProvider = StrataRoot.Version.class,
        description = "Serve container images (Nydus RAFS v6 / EROFS) as flat block devices.")
public class StrataRoot implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /**
     * Inherited by every subcommand, so it may follow the subcommand's name too
     * ({@code strata serve nbd --log-format json ...}); applied as soon as it is parsed.
     */
    @CommandLine.Option(names = "--log-format", paramLabel = "text|json", scope = CommandLine.ScopeType.INHERIT,
            converter = LogFormat.Converter.class, completionCandidates = LogFormat.Names.class,
            description = "Log lines as text (default; without timestamps when stderr is the systemd journal, which adds them) "
                    + "or json: one object per line with time, level, logger, message and exception, for log shippers.")
    void logFormat(LogFormat format) {
        LogFormat.use(format);
    }

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required");
    }

    /** Reports the version from the jar manifest. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = StrataRoot.class.getPackage().getImplementationVersion();
            return new String[] {"strata " + (v == null ? "(development build)" : v)};
        }
    }
}
