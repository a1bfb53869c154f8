package io.strata.cli;

/**
 * Where {@code --tcp} (and {@code --metrics-listen}) listens: {@code PORT}, {@code :PORT}, {@code HOST}, {@code HOST:PORT},
 * {@code [IPV6]} or {@code [IPV6]:PORT}. Without a host it is 127.0.0.1: serving to other machines
 * must be asked for by naming an address (0.0.0.0, [::], or an interface's).
 */
record TcpListenAddress(String host, int port) {
    static final String LOOPBACK = "127.0.0.1";
    static final int DEFAULT_PORT = 10809;

    /**
     * Parses the option's value; IllegalArgumentException (a one-line message) when it is not one of
     * the forms, or its host does not resolve (a typo is a bad argument, not a failure to bind).
     */
    static TcpListenAddress parse(String value) {
        return parse(value, "--tcp", DEFAULT_PORT);
    }

    /**
     * Parses the value of {@code option}, whose port defaults to {@code defaultPort}, or must be given
     * when that is negative.
     */
    static TcpListenAddress parse(String value, String option, int defaultPort) {
        String host;
        String port;
        if (value.startsWith("[")) {
            int close = value.indexOf(']');
            if (close < 0 || close + 1 < value.length() && value.charAt(close + 1) != ':') {
                throw new IllegalArgumentException(option + " wants [IPV6]:PORT, got '" + value + "'");
            }
            host = value.substring(1, close);
            port = close + 1 < value.length() ? value.substring(close + 2) : "";
        } else {
            int colon = value.indexOf(':');
            if (colon >= 0 && value.indexOf(':', colon + 1) >= 0) {
                throw new IllegalArgumentException(option + ": put an IPv6 address in brackets, [ADDRESS]:PORT, got '" + value + "'");
            }
            if (colon >= 0) {
                host = value.substring(0, colon);
                port = value.substring(colon + 1);
            } else if (!value.isEmpty() && value.chars().allMatch(Character::isDigit)) {
                host = "";
                port = value;
            } else {
                host = value;
                port = "";
            }
        }
        if (host.isEmpty() && value.startsWith("[")) {
            throw new IllegalArgumentException(option + ": empty address in '" + value + "'");
        }
        if (port.isEmpty() && defaultPort < 0) {
            throw new IllegalArgumentException(option + " wants [HOST:]PORT, got '" + value + "'");
        }
        int p = defaultPort;
        if (!port.isEmpty()) {
            try {
                p = Integer.parseInt(port);
            } catch (NumberFormatException e) {
                p = -1;
            }
            if (p < 0 || p > 65535) {
                throw new IllegalArgumentException(option + " port must be 0..65535, got '" + port + "'");
            }
        }
        if (!host.isEmpty()) {
            try {
                java.net.InetAddress.getByName(host);
            } catch (java.net.UnknownHostException e) {
                throw new IllegalArgumentException(option + ": unknown host '" + host + "'");
            }
        }
        return new TcpListenAddress(host.isEmpty() ? LOOPBACK : host, p);
    }

    /** HOST:PORT as the option takes it, an IPv6 address in brackets. */
    @Override
    public String toString() {
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
}
