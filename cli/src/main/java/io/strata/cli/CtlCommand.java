package io.strata.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code strata ctl}: the daemon's control API from the command line ({@link ControlClient}). A
 * request the daemon refuses prints its error in one line and exits 1; bad arguments exit 2, and so
 * does a request the daemon refuses as one (HTTP 400: a source that is no image, a bad socket path).
 */
@Command(name = "ctl", mixinStandardHelpOptions = true,
        description = "Manage a running daemon (strata serve --control PATH): add, remove and list exports, show its stats, reload its --config.",
        subcommands = {CtlCommand.Add.class, CtlCommand.Remove.class, CtlCommand.ListExports.class, CtlCommand.Stats.class,
                CtlCommand.Reload.class})
final class CtlCommand implements Runnable {
    static final ObjectMapper JSON = new ObjectMapper();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** Where --control points when it is not given and STRATA_CONTROL is unset or empty. */
    static final String DEFAULT_CONTROL = "/run/strata/control.sock";

    /** Null when not given: then {@link #controlSocket} takes $STRATA_CONTROL (unless empty) or {@link #DEFAULT_CONTROL}. */
    @Option(names = "--control", paramLabel = "PATH", scope = CommandLine.ScopeType.INHERIT,
            description = "The daemon's control socket (default: $STRATA_CONTROL, else /run/strata/control.sock).")
    Path control;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "120", scope = CommandLine.ScopeType.INHERIT,
            description = "How long to wait for the daemon's answer (an image by reference may take a while to open; default: ${DEFAULT-VALUE}).")
    long timeout;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required: add, remove, list, stats or reload");
    }

    /**
     * Sends a request for the subcommand {@code spec} runs; prints nothing. Returns the body's JSON,
     * or fails with the daemon's error: exit 2 when it refused the request as a bad one (HTTP 400),
     * else 1.
     */
    static JsonNode request(CommandLine.Model.CommandSpec spec, String method, String target, String body) throws IOException {
        CtlCommand ctl = ctl(spec);
        CommandLine cmd = spec.commandLine();
        if (ctl.timeout < 1) {
            throw new CommandLine.ParameterException(cmd, "--timeout must be at least 1 second");
        }
        ControlClient.Reply r = new ControlClient(controlSocket(cmd, ctl.control, System.getenv("STRATA_CONTROL")), ctl.timeout)
                .send(method, target, body);
        JsonNode json;
        try {
            json = JSON.readTree(r.body());
        } catch (IOException e) {
            throw new IOException("the daemon answered HTTP " + r.status() + " with a body that is not JSON");
        }
        if (r.status() >= 300) {
            String error = json != null && json.has("error") ? json.get("error").asText() : r.body().strip();
            if (r.status() == 400 && json != null && json.path("bad_argument").asBoolean(false)) {
                throw new CommandLine.ParameterException(cmd, error);
            }
            throw new IOException(error + " (HTTP " + r.status() + ")");
        }
        return json;
    }

    /**
     * The control socket: {@code given} (--control; empty is a bad argument), else {@code env}
     * ($STRATA_CONTROL) unless it is empty, as a shell leaves it after {@code STRATA_CONTROL= cmd},
     * else {@link #DEFAULT_CONTROL}.
     */
    static Path controlSocket(CommandLine cmd, Path given, String env) {
        if (given != null) {
            if (given.toString().isEmpty()) {
                throw new CommandLine.ParameterException(cmd, "--control wants a path, got ''");
            }
            return given;
        }
        return Path.of(env == null || env.isEmpty() ? DEFAULT_CONTROL : env);
    }

    /** A local path argument made absolute: the daemon's working directory is not ours. */
    static String absolute(Path p) {
        return p.toAbsolutePath().normalize().toString();
    }

    @Command(name = "add", mixinStandardHelpOptions = true, description = "Add an export: an NBD export or a vhost-user socket.",
            subcommands = {AddNbd.class, AddVhostUser.class})
    static final class Add implements Runnable {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public void run() {
            throw new CommandLine.ParameterException(spec.commandLine(), "name the kind: nbd NAME SOURCE or vhost-user SOCKET SOURCE");
        }
    }

    /** SOURCE as the serve commands take it: a bootstrap (with -D) or a reference, or --raw IMAGE. */
    static final class SourceOptions {
        @Option(names = "--raw", paramLabel = "IMAGE", description = "Serve a plain image file instead of a RAFS image.")
        Path raw;

        @Option(names = {"-D", "--blob-dir"}, paramLabel = "BLOBDIR", description = "Directory of blob files (default: blobs/ beside the bootstrap, else its directory).")
        Path blobDir;

        void into(ObjectNode o, String source, CommandLine cmd) {
            if ((source == null) == (raw == null)) {
                throw new CommandLine.ParameterException(cmd, "give SOURCE or --raw IMAGE (one of them)");
            }
            if (raw != null) {
                o.put("raw", absolute(raw));
            } else {
                o.put("source", ImageSource.isReference(source) ? source : absolute(Path.of(source)));
            }
            if (blobDir != null) {
                o.put("blob_dir", absolute(blobDir));
            }
        }
    }

    @Command(name = "nbd", mixinStandardHelpOptions = true, description = "Add an NBD export NAME on the daemon's NBD listener.")
    static final class AddNbd implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Parameters(index = "0", paramLabel = "NAME", description = "The export name clients ask for (nbd+unix:///NAME?socket=...).")
        String name;

        @Parameters(index = "1", arity = "0..1", paramLabel = "SOURCE",
                description = "RAFS v6 bootstrap, or image reference [docker://]HOST[:PORT]/REPO[:TAG|@sha256:DIGEST].")
        String image;

        @CommandLine.Mixin
        SourceOptions source;

        @Override
        public Integer call() throws IOException {
            ObjectNode o = JSON.createObjectNode();
            o.put("kind", ExportSpec.NBD);
            o.put("name", name);
            source.into(o, image, spec.commandLine());
            JsonNode e = request(spec, "POST", ControlServer.PREFIX + "exports", o.toString());
            spec.commandLine().getOut().println("added nbd export '" + e.path("name").asText() + "' (" + e.path("size").asLong() + " bytes)");
            return 0;
        }
    }

    @Command(name = "vhost-user", mixinStandardHelpOptions = true, description = "Add a vhost-user-blk socket SOCKET for QEMU.")
    static final class AddVhostUser implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Parameters(index = "0", paramLabel = "SOCKET", description = "The unix socket QEMU connects to (the export's name).")
        Path socket;

        @Parameters(index = "1", arity = "0..1", paramLabel = "SOURCE",
                description = "RAFS v6 bootstrap, or image reference [docker://]HOST[:PORT]/REPO[:TAG|@sha256:DIGEST].")
        String image;

        @CommandLine.Mixin
        SourceOptions source;

        @Option(names = "--queues", paramLabel = "N", defaultValue = "16", description = "Queues offered (default: ${DEFAULT-VALUE}).")
        int queues;

        @Override
        public Integer call() throws IOException {
            ObjectNode o = JSON.createObjectNode();
            o.put("kind", ExportSpec.VHOST_USER);
            o.put("socket", absolute(socket));
            o.put("queues", queues);
            source.into(o, image, spec.commandLine());
            JsonNode e = request(spec, "POST", ControlServer.PREFIX + "exports", o.toString());
            spec.commandLine().getOut().println("added vhost-user socket " + e.path("name").asText() + " (" + e.path("size").asLong() + " bytes)");
            return 0;
        }
    }

    @Command(name = "remove", mixinStandardHelpOptions = true,
            description = "Remove an export (an NBD name or a vhost-user socket path); refused while clients are connected, unless --force.")
    static final class Remove implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Parameters(index = "0", paramLabel = "NAME", description = "The NBD export name, or the vhost-user socket path.")
        String name;

        @Option(names = "--force", description = "Disconnect the export's clients (after the replies in flight) and remove it.")
        boolean force;

        @Override
        public Integer call() throws IOException {
            String export = exportNamed(name);
            String target = ControlServer.PREFIX + "exports?name=" + URLEncoder.encode(export, StandardCharsets.UTF_8) + (force ? "&force=true" : "");
            JsonNode r = request(spec, "DELETE", target, null);
            spec.commandLine().getOut().println("removed '" + export + "'" + (r != null && r.has("device") ? "; its device is " + r.get("device").asText() : ""));
            return 0;
        }

        /**
         * The export {@code typed} means: itself when an export has that name, else the socket path
         * it names relative to this directory (add made it absolute: "add vhost-user s1.sock" named
         * the export /here/s1.sock), else itself again (for the daemon's "no export" answer).
         */
        private String exportNamed(String typed) throws IOException {
            if (typed.startsWith("/")) {
                return typed;
            }
            String path;
            try {
                path = absolute(Path.of(typed));
            } catch (java.nio.file.InvalidPathException notAPath) {
                return typed;
            }
            boolean asTyped = false;
            boolean asPath = false;
            for (JsonNode e : request(spec, "GET", ControlServer.PREFIX + "exports", null)) {
                asTyped |= typed.equals(e.path("name").asText());
                asPath |= path.equals(e.path("name").asText());
            }
            return !asTyped && asPath ? path : typed;
        }
    }

    @Command(name = "list", mixinStandardHelpOptions = true, description = "List the exports: name, kind, clients, size, cache share, requests and bytes read, source.")
    static final class ListExports implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Option(names = "--json", description = "Print the API's JSON as it is.")
        boolean json;

        @Override
        public Integer call() throws IOException {
            JsonNode list = request(spec, "GET", ControlServer.PREFIX + "exports", null);
            PrintWriter out = spec.commandLine().getOut();
            if (json) {
                out.println(list.toPrettyString());
                return 0;
            }
            out.println(String.format(Locale.ROOT, "%-24s %-10s %7s %12s %10s %9s %12s  %s", "NAME", "KIND", "CLIENTS", "SIZE", "CACHE",
                    "REQUESTS", "READ", "SOURCE"));
            for (JsonNode e : list) {
                String source = e.has("raw") ? "raw:" + e.get("raw").asText() : e.path("source").asText();
                out.println(String.format(Locale.ROOT, "%-24s %-10s %7d %12d %10d %9d %12d  %s", e.path("name").asText(),
                        e.path("kind").asText(), e.path("clients").asInt(), e.path("size").asLong(), e.path("cache_bytes").asLong(),
                        e.path("requests").asLong(), e.path("bytes_read").asLong(), source));
            }
            return 0;
        }
    }

    @Command(name = "stats", mixinStandardHelpOptions = true, description = "Show the daemon's stats (JSON): shared cache, NBD counters, process.")
    static final class Stats implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            spec.commandLine().getOut().println(request(spec, "GET", ControlServer.PREFIX + "stats", null).toPrettyString());
            return 0;
        }
    }

    @Command(name = "reload", mixinStandardHelpOptions = true,
            description = {"Re-read the daemon's --config file and apply it, as SIGHUP does, and say how it went: exit 1 when the",
                    "file does not parse (nothing changes) or an entry could not be applied (the rest are). strata.service's ExecReload."})
    static final class Reload implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            spec.commandLine().getOut().println(request(spec, "POST", ControlServer.PREFIX + "reload", null).path("summary").asText());
            return 0;
        }
    }

    /** The ctl command above a subcommand (for --control and --timeout). */
    static CtlCommand ctl(CommandLine.Model.CommandSpec spec) {
        CommandLine c = spec.commandLine();
        while (c != null && !(c.getCommand() instanceof CtlCommand)) {
            c = c.getParent();
        }
        return (CtlCommand) c.getCommand();
    }
}
