package io.strata.cli;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Re-reads the daemon's {@code --config} and applies it ({@link Daemon#apply}). Two callers: SIGHUP
 * (fire and forget: the outcome is only logged) and the control API's {@code POST /api/v1/reload},
 * which answers with the outcome, so that {@code strata ctl reload}, and {@code systemctl reload}
 * through it, fails for a config that does not parse or an entry that cannot be served, as
 * {@code nginx -s reload} or {@code systemctl reload} of a unit with a checking ExecReload= do.
 * One reload at a time: a second waits for the first, then reads the file as it is by then.
 */
final class ConfigReload {
    private final Path config;
    private final SystemdNotifier systemd;
    private final ReentrantLock oneAtATime = new ReentrantLock();

    /**
     * {@code config} null: the daemon was started without one, and a reload changes nothing. While a
     * reload opens exports, {@code systemd} is asked for more time, as at start: {@code systemctl
     * reload} is bounded by the unit's start timeout (90 s by default), and a remote image may take
     * the registry's deadline to open.
     */
    ConfigReload(Path config, SystemdNotifier systemd) {
        this.config = config;
        this.systemd = systemd;
    }

    /** The --config file, or null. */
    Path config() {
        return config;
    }

    /**
     * Reads the config and makes the daemon's config exports match it. Null when there is no
     * config. A file that cannot be read or does not parse throws and changes nothing; entries that
     * cannot be served are in the answer's problems (the rest still applied).
     */
    Daemon.Applied reload(Daemon daemon) throws IOException {
        if (config == null) {
            return null;
        }
        // The extension starts before the wait for a reload under way: that one may be opening slow
        // images, and systemd's clock runs for this reload's ExecReload meanwhile.
        String outcome = "config not reloaded";
        try (ServeCommand.TimeExtension extending = ServeCommand.extendStartWhile(systemd, "reloading " + config)) {
            oneAtATime.lock();
            try {
                Daemon.Applied applied = daemon.apply(DaemonConfig.read(config).exports());
                outcome = applied.problems().isEmpty() ? "config reloaded" : "config reloaded with " + applied.problems().size() + " problem(s)";
                return applied;
            } finally {
                oneAtATime.unlock();
            }
        } finally {
            // The status line the extension replaced: what serves now, and how the reload went.
            systemd.status("serving " + daemon.exports().size() + " export(s); " + outcome);
        }
    }
}
