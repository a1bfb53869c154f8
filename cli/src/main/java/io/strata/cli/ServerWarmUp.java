package io.strata.cli;

import io.strata.nbd.NbdServer;
import java.util.TimeZone;
import org.slf4j.LoggerFactory;

/**
 * {@code serve nbd}'s start on two cores: while the main thread builds the command line and opens
 * the image, a daemon thread sets up what comes after and does not depend on them: the logger
 * (slf4j's provider, the time zone of the timestamps), the JDK's unix sockets and the classes of the
 * first connection. About 40 ms of the main thread's path to its first answered client
 * (docs/benchmarks.md, "Start-up and idle footprint"). Best effort: whatever fails here is set up
 * again where it is used, with its real context.
 */
final class ServerWarmUp {
    private ServerWarmUp() {
    }

    static void start() {
        Thread t = new Thread(() -> {
            try {
                TimeZone.getDefault();
                LoggerFactory.getLogger(ServerWarmUp.class);
                NbdServer.prepareForFirstClient();
            } catch (RuntimeException | LinkageError e) {
                // Best effort, see above.
            }
        }, "strata-warm-up");
        t.setDaemon(true);
        t.start();
    }
}
