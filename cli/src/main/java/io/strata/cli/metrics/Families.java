package io.strata.cli.metrics;

import io.prometheus.metrics.model.snapshots.ClassicHistogramBuckets;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.CounterSnapshot.CounterDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot.GaugeDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot.HistogramDataPointSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One scrape's metric families being filled: each family (a name, its type and help) gathers the
 * data points every registered source adds to it, so a family appears once however many exports
 * report into it, and not at all when none does. Names are given without the {@code _total} suffix
 * (the Prometheus client adds it to counters in the text format).
 */
final class Families {
    private final Map<String, CounterSnapshot.Builder> counters = new LinkedHashMap<>();
    private final Map<String, GaugeSnapshot.Builder> gauges = new LinkedHashMap<>();
    private final Map<String, HistogramSnapshot.Builder> histograms = new LinkedHashMap<>();

    void counter(String name, String help, Labels labels, double value) {
        counters.computeIfAbsent(name, n -> CounterSnapshot.builder().name(n).help(help))
                .dataPoint(CounterDataPointSnapshot.builder().labels(labels).value(value).build());
    }

    void gauge(String name, String help, Labels labels, double value) {
        gauges.computeIfAbsent(name, n -> GaugeSnapshot.builder().name(n).help(help))
                .dataPoint(GaugeDataPointSnapshot.builder().labels(labels).value(value).build());
    }

    /** A classic histogram: {@code counts[i]} observations fell in bucket i (not cumulative), whose upper bound is {@code bounds[i]}; the last is +Inf. */
    void histogram(String name, String help, Labels labels, double[] bounds, long[] counts, double sum) {
        histograms.computeIfAbsent(name, n -> HistogramSnapshot.builder().name(n).help(help))
                .dataPoint(HistogramDataPointSnapshot.builder().labels(labels)
                        .classicHistogramBuckets(ClassicHistogramBuckets.of(bounds, counts)).sum(sum).build());
    }

    List<MetricSnapshot> build() {
        List<MetricSnapshot> all = new ArrayList<>();
        counters.values().forEach(b -> all.add(b.build()));
        gauges.values().forEach(b -> all.add(b.build()));
        histograms.values().forEach(b -> all.add(b.build()));
        return all;
    }
}
