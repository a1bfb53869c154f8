package io.strata.registry;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.ProxySelector;
import java.net.SocketAddress;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The JDK's HttpClient does not read {@code HTTP_PROXY}/{@code HTTPS_PROXY}/{@code NO_PROXY}; this
 * selector does, the way curl and Go do: the lower-case name wins over the upper-case one,
 * {@code NO_PROXY} is a comma list of host names (a name also matches its subdomains; a leading '.'
 * or '*.' is allowed), {@code HOST:PORT} entries, IP addresses, and {@code *} for everything.
 * Loopback is proxied unless listed, as in curl (a test's fault-injecting proxy relies on it).
 * Proxy credentials in the URL are not supported (the JDK needs an Authenticator for them).
 */
public final class EnvProxySelector extends ProxySelector {
    private final Proxy http;
    private final Proxy https;
    private final List<String> noProxy;

    private EnvProxySelector(Proxy http, Proxy https, List<String> noProxy) {
        this.http = http;
        this.https = https;
        this.noProxy = noProxy;
    }

    /** The selector for this environment, or null when no proxy variable is set. */
    public static EnvProxySelector fromEnvironment(Map<String, String> env) {
        Proxy http = proxy(first(env, "http_proxy", "HTTP_PROXY"));
        Proxy https = proxy(first(env, "https_proxy", "HTTPS_PROXY"));
        if (http == null && https == null) {
            return null;
        }
        List<String> no = new ArrayList<>();
        String list = first(env, "no_proxy", "NO_PROXY");
        if (list != null) {
            for (String s : list.split(",")) {
                String t = s.trim().toLowerCase(Locale.ROOT);
                if (t.startsWith("*.")) {
                    t = t.substring(1);
                }
                if (!t.isEmpty()) {
                    no.add(t);
                }
            }
        }
        return new EnvProxySelector(http, https, List.copyOf(no));
    }

    private static String first(Map<String, String> env, String lower, String upper) {
        String v = env.get(lower);
        if (v == null || v.isEmpty()) {
            v = env.get(upper);
        }
        return v == null || v.isEmpty() ? null : v;
    }

    private static Proxy proxy(String value) {
        if (value == null) {
            return null;
        }
        String v = value.contains("://") ? value : "http://" + value;
        URI u;
        try {
            u = URI.create(v);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("proxy setting is not a URL: " + RegistryException.oneLine(value.replaceAll("//[^@/]*@", "//")));
        }
        if (u.getHost() == null) {
            throw new IllegalArgumentException("proxy setting has no host: " + u.getScheme() + "://...");
        }
        if (u.getUserInfo() != null) {
            throw new IllegalArgumentException("proxy credentials in HTTP(S)_PROXY are not supported (proxy " + u.getHost() + ")");
        }
        int port = u.getPort() > 0 ? u.getPort() : "https".equals(u.getScheme()) ? 443 : 80;
        return new Proxy(Proxy.Type.HTTP, InetSocketAddress.createUnresolved(u.getHost(), port));
    }

    @Override
    public List<Proxy> select(URI uri) {
        Proxy p = "https".equalsIgnoreCase(uri.getScheme()) ? https : http;
        if (p == null || bypass(uri)) {
            return List.of(Proxy.NO_PROXY);
        }
        return List.of(p);
    }

    boolean bypass(URI uri) {
        String host = uri.getHost() == null ? "" : uri.getHost().toLowerCase(Locale.ROOT);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        int port = uri.getPort() > 0 ? uri.getPort() : "https".equalsIgnoreCase(uri.getScheme()) ? 443 : 80;
        for (String entry : noProxy) {
            if (entry.equals("*")) {
                return true;
            }
            String name = entry;
            int colon = entry.lastIndexOf(':');
            if (colon > 0 && entry.indexOf(':') == colon && !entry.startsWith("[")) {
                name = entry.substring(0, colon);
                if (!entry.substring(colon + 1).equals(Integer.toString(port))) {
                    continue;
                }
            }
            if (name.startsWith("[") && name.endsWith("]")) {
                name = name.substring(1, name.length() - 1);
            }
            if (name.startsWith(".")) {
                name = name.substring(1);
            }
            if (host.equals(name) || host.endsWith("." + name)) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void connectFailed(URI uri, SocketAddress sa, IOException ioe) {
        // The request fails with the I/O error and is retried like any other.
    }
}
