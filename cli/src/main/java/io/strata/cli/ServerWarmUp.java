package io.strata.cli;

import io.strata.nbd.NbdServer;
import java.lang.reflect.AccessibleObject;
import java.lang.reflect.Field;
import java.util.HashSet;
import java.util.Set;
import java.util.TimeZone;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;

/**
 * {@code serve nbd}'s start on two cores: while the main thread builds the command line and opens
 * the image, a daemon thread sets up what comes after and does not depend on them: the logger
 * (slf4j's provider, the time zone of the timestamps), the JDK's unix sockets and the classes of the
 * first connection. About 40 ms of the main thread's path to its first answered client
 * (docs/benchmarks.md, "Start-up and idle footprint"). Best effort: whatever fails here is set up
 * again where it is used, with its real context.
 *
 * <p>First of all it reads the annotations of {@code serve nbd}'s options ({@link #readOptionAnnotations}),
 * which picocli reads next on the main thread: the JDK makes each annotation an instance of a proxy
 * class it generates, in the interpreter, the first time a type is read (a few ms per type, ~25 ms
 * for the first), and caches what it parsed on the field, so whatever this thread has read the main
 * thread finds ready (a field's annotations are parsed under its lock: never twice).
 */
final class ServerWarmUp implements Runnable {
    private ServerWarmUp() {
    }

    static void start() {
        // A named Runnable, not a lambda: the main thread's first lambda would link the JDK's
        // method-handle machinery (~15 ms) here, before anything else it does; this thread meets it
        // first instead (the annotations' proxies use it), beside the main thread's work.
        Thread t = new Thread(new ServerWarmUp(), "strata-warm-up");
        t.setDaemon(true);
        t.start();
    }

    @Override
    public void run() {
        try {
            readOptionAnnotations(ServeNbdCommand.class, new HashSet<>());
            TimeZone.getDefault();
            LoggerFactory.getLogger(ServerWarmUp.class);
            NbdServer.prepareForFirstClient();
        } catch (RuntimeException | LinkageError e) {
            // Best effort, see above.
        }
    }

    /**
     * Reads the annotations of {@code command}'s fields and methods, and of the mixins and argument
     * groups it holds (whose fields picocli reads as part of the command), deepest first: the main
     * thread starts at the root and reaches them last.
     */
    static void readOptionAnnotations(Class<?> command, Set<Class<?>> seen) {
        if (!seen.add(command)) {
            return;
        }
        // isAnnotationPresent parses (and caches) all of a field's annotations, not only the one asked for.
        for (Field f : command.getDeclaredFields()) {
            if (f.isAnnotationPresent(CommandLine.Mixin.class) || f.isAnnotationPresent(CommandLine.ArgGroup.class)) {
                readOptionAnnotations(f.getType(), seen);
            }
        }
        for (AccessibleObject member : command.getDeclaredMethods()) {
            member.getDeclaredAnnotations();
        }
        command.getAnnotations();
    }
}
