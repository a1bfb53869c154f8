package io.strata.nbd;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The exports one server offers, by name. The default export answers the empty name, as nbdkit's
 * and qemu-nbd's do, so {@code nbd://host} and {@code nbd+unix:///?socket=...} need no name.
 */
public final class ExportRegistry {
    private final Map<String, Export> byName = new LinkedHashMap<>();
    private final boolean firstIsDefault;
    private Export defaultExport;

    /** A server's exports; the first one added is the default unless another is added as the default. */
    public ExportRegistry() {
        this(true);
    }

    /**
     * With {@code firstIsDefault} false, only an export added as the default answers the empty name:
     * the daemon's exports come and go, and a client that names none must not be handed whichever
     * disk happens to be oldest (after a removal, a different one).
     */
    public ExportRegistry(boolean firstIsDefault) {
        this.firstIsDefault = firstIsDefault;
    }

    public synchronized void add(Export e, boolean isDefault) {
        if (byName.containsKey(e.name())) {
            throw new IllegalArgumentException("export '" + e.name() + "' is defined twice");
        }
        byName.put(e.name(), e);
        if (isDefault || defaultExport == null && firstIsDefault) {
            defaultExport = e;
        }
    }

    /**
     * Takes an export out (the daemon's remove): new clients no longer find it; connected ones are
     * the server's to end. If it was the default, the oldest remaining export becomes the default.
     * Returns the export, or null if there was none of that name.
     */
    public synchronized Export remove(String name) {
        Export e = byName.remove(name);
        if (e != null && e == defaultExport) {
            defaultExport = byName.isEmpty() || !firstIsDefault ? null : byName.values().iterator().next();
        }
        return e;
    }

    /** The export for a client's name; the empty name means the default export. Null if none. */
    public synchronized Export find(String name) {
        if (name.isEmpty()) {
            return defaultExport;
        }
        return byName.get(name);
    }

    public synchronized Collection<Export> all() {
        return java.util.List.copyOf(byName.values());
    }
}
