package io.strata.cli.metrics;

/** What {@link ServedMetrics} gave back for something it reports: closing it removes those series from the scrape. */
@FunctionalInterface
public interface MetricsRegistration extends AutoCloseable {
    /** Removes the series; closing again does nothing. */
    @Override
    void close();
}
