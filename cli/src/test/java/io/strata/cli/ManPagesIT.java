package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.strata.core.testing.HostTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * The man pages and the bash completion script that {@code mvn package} generates from the picocli
 * model (cli/pom.xml, execution man-pages-and-completion): every page renders with man-db's
 * {@code man -l} without warnings, and mentions every option its command's {@code --help} shows, in
 * its synopsis and in its text, so the two cannot drift apart.
 */
class ManPagesIT {
    /** An option as --help prints it: -x, --long-name (not the "-" inside words such as read-only). */
    private static final Pattern OPTION = Pattern.compile("(?<![\\w-])--?[A-Za-z][A-Za-z0-9-]*");

    /** A line of man-db's or groff's own: "troff: <standard input>:12: warning: ...", "man: ...". */
    private static final Pattern DIAGNOSTIC = Pattern.compile("(?m)^(man|\\S*troff|grotty|preconv|tbl): ");

    static Path generated(String path) {
        return StrataProcess.home().resolve("cli/target").resolve(path);
    }

    @Test
    void everyCommandHasAPageThatRendersAndNamesEveryOptionOfItsHelp() throws Exception {
        HostTools.requireTool("man", "man-db");
        List<CommandLine> commands = CommandTree.of(new CommandLine(new StrataCommand()));
        assertTrue(commands.size() >= 9, "strata, its subcommands and serve's: " + commands.size());
        for (CommandLine cmd : commands) {
            String name = cmd.getCommandSpec().qualifiedName("-");
            Path page = generated("man/man1/" + name + ".1");
            assertTrue(Files.isRegularFile(page), "no man page " + page);
            // Wide enough that no option is wrapped; C locale so groff prints '-' as '-'. man-db drops
            // bold/underline when its output is not a terminal.
            HostTools.Outcome man = HostTools.execute(List.of("env", "MANWIDTH=250", "LC_ALL=C", "man", "--warnings", "-l", page.toString()));
            assertEquals(0, man.exitCode(), name + ": " + man.output());
            String text = man.output();
            assertFalse(DIAGNOSTIC.matcher(text).find(), name + ": man or groff complains:\n" + text);
            assertTrue(text.startsWith(name.toUpperCase() + "(1)"), name + ":\n" + text);
            String synopsis = section(text, "SYNOPSIS");
            assertTrue(synopsis.contains(cmd.getCommandSpec().qualifiedName(" ")), name + " synopsis:\n" + synopsis);

            String help = cmd.getUsageMessage(CommandLine.Help.Ansi.OFF);
            String usage = cmd.getHelp().synopsis(0); // the "Usage: ..." lines of --help
            Set<String> helpOptions = options(help);
            assertFalse(helpOptions.isEmpty(), name + ": " + help);
            Set<String> pageOptions = options(text);
            for (String o : helpOptions) {
                assertTrue(pageOptions.contains(o), name + "(1) lacks " + o + ", which --help shows:\n" + text);
            }
            Set<String> synopsisOptions = options(synopsis);
            for (String o : options(usage)) {
                assertTrue(synopsisOptions.contains(o), name + "(1)'s synopsis lacks " + o + ", which --help's usage line shows:\n" + synopsis);
            }
        }
    }

    @Test
    void bashCompletesSubcommandsAndOptions() throws Exception {
        HostTools.requireTool("bash", "bash");
        Path script = generated("completion/strata");
        assertTrue(Files.isRegularFile(script), "no completion script " + script);
        assertEquals(List.of("serve"), complete(script, "strata", "se"));
        assertEquals(List.of("nbd"), complete(script, "strata", "serve", "nb"));
        assertEquals(List.of("--socket", "--socket-mode"), complete(script, "strata", "serve", "nbd", "--sock"));
    }

    /** COMPREPLY of the function the script registers for {@code strata}, with the cursor after the last word. */
    private static List<String> complete(Path script, String... words) throws Exception {
        String line = String.join(" ", words);
        StringBuilder quoted = new StringBuilder();
        for (String w : words) {
            quoted.append(" '").append(w).append('\'');
        }
        // compopt complains outside a real completion (stderr); COMPREPLY is what bash would offer.
        String bash = "source '" + script + "' 2>/dev/null\n"
                + "fn=$(complete -p strata | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')\n"
                + "[ -n \"$fn\" ] || { echo 'no completion function registered for strata'; exit 3; }\n"
                + "COMP_WORDS=(" + quoted + " ); COMP_CWORD=" + (words.length - 1) + "; COMP_LINE='" + line + "'; COMP_POINT=" + line.length() + "\n"
                + "\"$fn\" strata '" + words[words.length - 1] + "' '" + words[words.length - 2] + "' 2>/dev/null\n"
                + "printf '%s\\n' \"${COMPREPLY[@]}\"\n";
        HostTools.Outcome o = HostTools.execute(List.of("bash", "--norc", "--noprofile", "-c", bash));
        assertEquals(0, o.exitCode(), o.output());
        List<String> reply = new ArrayList<>(o.output().lines().filter(l -> !l.isEmpty()).toList());
        reply.sort(null);
        return reply;
    }

    /** The text of a man page section: from its heading to the next heading (a line at column 0). */
    private static String section(String text, String heading) {
        int start = text.indexOf("\n" + heading + "\n");
        assertTrue(start >= 0, "no " + heading + " in\n" + text);
        Matcher next = Pattern.compile("\n[A-Z]").matcher(text);
        int end = next.find(start + heading.length() + 2) ? next.start() : text.length();
        return text.substring(start, end);
    }

    private static Set<String> options(String text) {
        Set<String> found = new LinkedHashSet<>();
        Matcher m = OPTION.matcher(text);
        while (m.find()) {
            found.add(m.group());
        }
        return found;
    }
}
