package io.strata.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code strata} command with every subcommand, one per job, each in its own class: the whole
 * command line, as help, the man pages and the completion script show it. Its name, options and
 * help come from {@link StrataRoot} (picocli reads the {@code @Command} of each class in the
 * hierarchy).
 */
@Command(subcommands = {BuildCommand.class, PushCommand.class, InspectCommand.class, ExportCommand.class, ServeCommand.class, CtlCommand.class,
        AttachCommand.class, CommandLine.HelpCommand.class})
public final class StrataCommand extends StrataRoot {
}
