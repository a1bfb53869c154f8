package io.strata.builder.source;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.strata.builder.BuildException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * An OCI image layout ({@code index.json} -> manifest -> layers, OCI image-spec "image-layout"):
 * each layer is one tar layer, applied in order with its whiteouts ({@link WhiteoutMode#APPLY}), and
 * becomes one data blob. Every blob read is checked against its descriptor's digest and size, and
 * every layer is checked to exist before the first is read.
 */
public final class OciLayoutSource implements ImageSource {
    private static final Pattern SHA256 = Pattern.compile("sha256:[0-9a-f]{64}");
    private static final java.util.Set<String> INDEX_TYPES = java.util.Set.of("application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json");

    /** The annotation naming a manifest in index.json (skopeo's oci:DIR:TAG writes it). */
    static final String REF_NAME = "org.opencontainers.image.ref.name";

    private final Path dir;
    /** The manifest to take by its ref name, or null for the only one (or the host's platform's). */
    private final String tag;
    private final ObjectMapper json = new ObjectMapper();

    public OciLayoutSource(Path dir) {
        this(dir, null);
    }

    public OciLayoutSource(Path dir, String tag) {
        this.dir = dir;
        this.tag = tag;
    }

    /**
     * The layout and tag of a {@code DIR:TAG} source (as skopeo names one, oci:DIR:TAG), or null
     * when {@code source} is not that: DIR must be a layout and TAG not empty. The first ':' after
     * which a layout ends splits them: a ref.name may hold ':' and '/' itself (skopeo's
     * {@code oci:lay:alpine:3.19} tags the image "alpine:3.19").
     */
    public static OciLayoutSource tagged(Path source) {
        String s = source.toString();
        for (int colon = s.indexOf(':'); colon > 0 && colon < s.length() - 1; colon = s.indexOf(':', colon + 1)) {
            Path layout = Path.of(s.substring(0, colon));
            if (isLayout(layout)) {
                return new OciLayoutSource(layout, s.substring(colon + 1));
            }
        }
        return null;
    }

    /** Whether {@code dir} looks like an OCI image layout. */
    public static boolean isLayout(Path dir) {
        return Files.isRegularFile(dir.resolve("index.json")) && Files.isRegularFile(dir.resolve("oci-layout"));
    }

    @Override
    public String describe() {
        return tag == null ? dir.toString() : dir + ":" + tag;
    }

    record Descriptor(String mediaType, String digest, long size, JsonNode platform) {
        static Descriptor of(JsonNode n, String where) throws BuildException {
            String digest = n.path("digest").asText("");
            if (!SHA256.matcher(digest).matches()) {
                throw new BuildException(where + ": digest '" + digest + "' is not sha256:<64 hex digits>");
            }
            if (!n.path("size").canConvertToLong() || n.path("size").asLong() < 0) {
                throw new BuildException(where + ": descriptor " + digest + " has no valid size");
            }
            return new Descriptor(n.path("mediaType").asText(""), digest, n.path("size").asLong(), n.path("platform"));
        }
    }

    @Override
    public void addTo(BuildContext ctx) throws IOException {
        JsonNode index = parse(dir.resolve("index.json"), "index.json");
        String where = dir + "/index.json";
        Descriptor m = select(tagged(index, where), where, tag == null);
        JsonNode manifest = readJson(m, where);
        while (INDEX_TYPES.contains(m.mediaType()) || manifest.has("manifests")) {
            where = dir + ": index " + m.digest();
            m = select(manifest, where, false);
            manifest = readJson(m, where);
        }
        where = dir + ": manifest " + m.digest();
        JsonNode layerList = manifest.path("layers");
        if (!layerList.isArray()) {
            throw new BuildException(where + " has no layers array");
        }
        List<Descriptor> layers = new ArrayList<>();
        for (int i = 0; i < layerList.size(); i++) {
            Descriptor d = Descriptor.of(layerList.get(i), where + " layer " + (i + 1));
            if (!d.mediaType().isEmpty() && (!d.mediaType().contains("tar") || d.mediaType().contains("encrypted"))) {
                throw new BuildException(where + " layer " + (i + 1) + " (" + d.digest() + ") has media type '"
                        + d.mediaType() + "', not a tar layer");
            }
            if (!Files.isRegularFile(blobPath(d))) {
                throw new BuildException(where + " references layer " + (i + 1) + " (" + d.digest()
                        + "), which is missing from " + dir.resolve("blobs/sha256"));
            }
            layers.add(d);
            ctx.addTotal(d.size());
        }
        for (int i = 0; i < layers.size(); i++) {
            readLayer(ctx, i, layers.size(), layers.get(i));
        }
    }

    private void readLayer(BuildContext ctx, int i, int count, Descriptor d) throws IOException {
        String name = dir + ": layer " + (i + 1) + "/" + count + " (" + d.digest() + ")";
        MessageDigest sha = sha256();
        long[] read = new long[1];
        try (InputStream file = Files.newInputStream(blobPath(d));
             DigestInputStream raw = new DigestInputStream(new CountingInputStream(file, n -> {
                 read[0] += n;
                 ctx.addDone(n);
             }), sha);
             InputStream tar = Decompression.open(raw, name)) {
            new TarLayerReader(ctx, i, WhiteoutMode.APPLY, name).read(tar);
            try {
                // The tar's end-of-archive blocks may come before the end of the compressed stream;
                // reading on checks the rest (the gzip trailer's CRC) and completes the digest.
                tar.transferTo(OutputStream.nullOutputStream());
                raw.transferTo(OutputStream.nullOutputStream());
            } catch (IOException e) {
                throw new BuildException(name + ": after the last entry: " + e.getMessage(), e);
            }
        }
        String actual = "sha256:" + HexFormat.of().formatHex(sha.digest());
        if (!actual.equals(d.digest()) || read[0] != d.size()) {
            throw new BuildException(name + ": blob has digest " + actual + " and " + read[0] + " bytes; the manifest says "
                    + d.digest() + " and " + d.size() + " bytes");
        }
        ctx.pipeline().endLayer();
    }

    /** index.json with only the manifests named {@link #tag} (all of them without a tag). */
    private JsonNode tagged(JsonNode index, String where) throws BuildException {
        if (tag == null) {
            return index;
        }
        com.fasterxml.jackson.databind.node.ArrayNode named = json.createArrayNode();
        java.util.Set<String> tags = new java.util.TreeSet<>();
        for (JsonNode n : index.path("manifests")) {
            String name = n.path("annotations").path(REF_NAME).asText("");
            tags.add(name);
            if (name.equals(tag)) {
                named.add(n);
            }
        }
        if (named.isEmpty()) {
            tags.remove("");
            throw new BuildException(where + " has no manifest tagged '" + tag + "' (tags: "
                    + (tags.isEmpty() ? "none" : String.join(", ", tags)) + ")");
        }
        return json.createObjectNode().set("manifests", named);
    }

    /** The one image {@code index} lists (the host's platform's of several); {@code tagHint}: say DIR:TAG can pick one. */
    private Descriptor select(JsonNode index, String where, boolean tagHint) throws BuildException {
        JsonNode ms = index.path("manifests");
        if (!ms.isArray() || ms.isEmpty()) {
            throw new BuildException(where + " lists no manifests");
        }
        // The same manifest under several tags (skopeo copy to oci:DIR:latest, then to oci:DIR:v1) is one image.
        java.util.Set<String> digests = new java.util.HashSet<>();
        for (JsonNode n : ms) {
            digests.add(n.path("digest").asText(""));
        }
        if (digests.size() == 1) {
            return Descriptor.of(ms.get(0), where);
        }
        String arch = hostArchitecture();
        List<Descriptor> matching = new ArrayList<>();
        StringBuilder all = new StringBuilder();
        for (JsonNode n : ms) {
            Descriptor d = Descriptor.of(n, where);
            String os = d.platform().path("os").asText("?");
            String a = d.platform().path("architecture").asText("?");
            all.append(all.length() == 0 ? "" : ", ").append(d.digest()).append(" (").append(os).append('/').append(a).append(')');
            if (os.equals("linux") && a.equals(arch)) {
                matching.add(d);
            }
        }
        if (!matching.isEmpty() && matching.stream().map(Descriptor::digest).distinct().count() == 1) {
            return matching.get(0);
        }
        throw new BuildException(where + " lists " + ms.size() + " manifests and " + matching.size()
                + " for linux/" + arch + ": " + all + (tagHint ? "; name one as DIR:TAG" : ""));
    }

    private static String hostArchitecture() {
        String a = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        switch (a) {
            case "x86_64":
            case "amd64":
                return "amd64";
            case "aarch64":
                return "arm64";
            default:
                return a;
        }
    }

    /** The most a manifest, index or config may take (real ones are KiB; registries refuse a manifest past 4 MiB). */
    static final long MAX_JSON_BLOB = 4L << 20;

    private JsonNode readJson(Descriptor d, String where) throws IOException {
        Path p = blobPath(d);
        if (!Files.isRegularFile(p)) {
            throw new BuildException(where + " references " + d.digest() + ", which is missing from " + dir.resolve("blobs/sha256"));
        }
        long onDisk = Files.size(p);
        if (onDisk != d.size() || onDisk > MAX_JSON_BLOB) {
            // Checked before reading: a hostile layout's multi-GiB "manifest" is refused, not read into memory.
            throw new BuildException(where + ": blob " + d.digest() + " has " + onDisk + " bytes; expected " + d.size()
                    + (onDisk > MAX_JSON_BLOB ? " (manifests, indexes and configs are at most " + (MAX_JSON_BLOB >> 20) + " MiB here)" : ""));
        }
        byte[] bytes = Files.readAllBytes(p);
        String actual = "sha256:" + HexFormat.of().formatHex(sha256().digest(bytes));
        if (!actual.equals(d.digest()) || bytes.length != d.size()) {
            throw new BuildException(where + ": blob " + d.digest() + " has digest " + actual + " and " + bytes.length
                    + " bytes; expected " + d.size());
        }
        try {
            return json.readTree(bytes);
        } catch (IOException e) {
            throw new BuildException(where + ": blob " + d.digest() + " is not JSON: " + e.getMessage(), e);
        }
    }

    private JsonNode parse(Path file, String what) throws BuildException {
        try {
            return json.readTree(file.toFile());
        } catch (IOException e) {
            throw new BuildException(dir + ": " + what + " is not valid JSON: " + e.getMessage(), e);
        }
    }

    private Path blobPath(Descriptor d) {
        return dir.resolve("blobs").resolve("sha256").resolve(d.digest().substring("sha256:".length()));
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
