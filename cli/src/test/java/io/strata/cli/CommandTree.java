package io.strata.cli;

import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine;

/** Every command of a picocli command tree, for tests that check all of Strata's commands. */
final class CommandTree {
    private CommandTree() {
    }

    /**
     * {@code root} and all its subcommands, depth first, each once (an alias maps to the same
     * CommandLine as its name).
     */
    static List<CommandLine> of(CommandLine root) {
        List<CommandLine> all = new ArrayList<>();
        collect(root, all);
        return all;
    }

    private static void collect(CommandLine cmd, List<CommandLine> into) {
        into.add(cmd);
        for (CommandLine sub : cmd.getSubcommands().values()) {
            if (!into.contains(sub)) {
                collect(sub, into);
            }
        }
    }
}
