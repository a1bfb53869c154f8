package io.strata.cli;

import org.slf4j.ILoggerFactory;
import org.slf4j.Logger;
import org.slf4j.simple.SimpleLoggerFactory;
import org.slf4j.simple.SimpleServiceProvider;

/**
 * slf4j-simple, whose loggers are {@link StrataLogger}s. Named by the {@code slf4j.provider} system
 * property ({@link HostLogging#prepare}), so slf4j takes it instead of looking for providers and
 * does not warn about finding two (this one and slf4j-simple's own).
 */
public final class StrataLogProvider extends SimpleServiceProvider {
    private ILoggerFactory factory;

    @Override
    public void initialize() {
        super.initialize();
        factory = new SimpleLoggerFactory() {
            @Override
            protected Logger createLogger(String name) {
                return new StrataLogger(name);
            }
        };
    }

    @Override
    public ILoggerFactory getLoggerFactory() {
        return factory;
    }
}
