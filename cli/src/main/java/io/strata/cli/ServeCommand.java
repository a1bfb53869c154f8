package io.strata.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code strata serve}: the servers, one subcommand per transport. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve an image as a block device over a transport.",
        subcommands = {ServeNbdCommand.class, ServeVhostUserCommand.class})
final class ServeCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "name a transport: nbd or vhost-user");
    }
}
