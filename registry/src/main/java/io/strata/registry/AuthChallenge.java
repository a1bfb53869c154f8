package io.strata.registry;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * One challenge of a {@code WWW-Authenticate} header (RFC 7235 section 4.1): a scheme and its
 * parameters, e.g. {@code Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"}.
 * Parameter values may be tokens or quoted strings with backslash escapes; several challenges may
 * share one header, separated by commas.
 */
public record AuthChallenge(String scheme, Map<String, String> params) {
    public boolean isBasic() {
        return scheme.equalsIgnoreCase("Basic");
    }

    public boolean isBearer() {
        return scheme.equalsIgnoreCase("Bearer");
    }

    public Optional<String> param(String name) {
        return Optional.ofNullable(params.get(name.toLowerCase(Locale.ROOT)));
    }

    /** Every challenge in the header values; malformed parts are skipped (the caller reports "no usable challenge"). */
    public static List<AuthChallenge> parse(List<String> headerValues) {
        List<AuthChallenge> out = new ArrayList<>();
        for (String h : headerValues) {
            parseInto(h, out);
        }
        return out;
    }

    /** The challenge to answer: Bearer is preferred over Basic (a registry offering both wants tokens). */
    public static Optional<AuthChallenge> choose(List<String> headerValues) {
        List<AuthChallenge> all = parse(headerValues);
        return all.stream().filter(AuthChallenge::isBearer).findFirst()
                .or(() -> all.stream().filter(AuthChallenge::isBasic).findFirst());
    }

    private static void parseInto(String h, List<AuthChallenge> out) {
        int i = 0;
        int n = h.length();
        String scheme = null;
        Map<String, String> params = new LinkedHashMap<>();
        while (i < n) {
            i = skip(h, i);
            int start = i;
            while (i < n && isTokenChar(h.charAt(i))) {
                i++;
            }
            if (i == start) {
                i++; // stray character: skip it
                continue;
            }
            String word = h.substring(start, i);
            int j = skipSpaces(h, i);
            if (j < n && h.charAt(j) == '=' && scheme != null && !(j + 1 < n && h.charAt(j + 1) == '=')) {
                // name=value
                j = skipSpaces(h, j + 1);
                StringBuilder value = new StringBuilder();
                if (j < n && h.charAt(j) == '"') {
                    j++;
                    while (j < n && h.charAt(j) != '"') {
                        char c = h.charAt(j);
                        if (c == '\\' && j + 1 < n) {
                            j++;
                            c = h.charAt(j);
                        }
                        value.append(c);
                        j++;
                    }
                    j++; // closing quote
                } else {
                    while (j < n && h.charAt(j) != ',' && h.charAt(j) != ' ') {
                        value.append(h.charAt(j++));
                    }
                }
                params.put(word.toLowerCase(Locale.ROOT), value.toString());
                i = j;
            } else {
                // a new scheme (or a token68, which registries do not use: kept as a scheme-less word)
                if (scheme != null) {
                    out.add(new AuthChallenge(scheme, Map.copyOf(params)));
                    params.clear();
                }
                scheme = word;
                i = j;
                // token68 after the scheme (e.g. "Negotiate abc=="): skip it
                if (i < n && h.charAt(i) != ',' && !looksLikeParam(h, i)) {
                    while (i < n && h.charAt(i) != ',') {
                        i++;
                    }
                }
            }
        }
        if (scheme != null) {
            out.add(new AuthChallenge(scheme, Map.copyOf(params)));
        }
    }

    private static boolean looksLikeParam(String h, int i) {
        int j = i;
        while (j < h.length() && isTokenChar(h.charAt(j))) {
            j++;
        }
        j = skipSpaces(h, j);
        return j > i && j < h.length() && h.charAt(j) == '=' && !(j + 1 < h.length() && h.charAt(j + 1) == '=');
    }

    private static int skip(String h, int i) {
        while (i < h.length() && (h.charAt(i) == ' ' || h.charAt(i) == ',' || h.charAt(i) == '\t')) {
            i++;
        }
        return i;
    }

    private static int skipSpaces(String h, int i) {
        while (i < h.length() && (h.charAt(i) == ' ' || h.charAt(i) == '\t')) {
            i++;
        }
        return i;
    }

    private static boolean isTokenChar(char c) {
        return c > 0x20 && c < 0x7f && "()<>@,;:\\\"/[]?={} \t".indexOf(c) < 0;
    }
}
