package io.strata.registry;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Reference -> Nydus manifest. GETs {@code /v2/<repo>/manifests/<tag|digest>} accepting OCI and
 * Docker manifests and indexes; checks a manifest fetched by digest against that digest; from an
 * index picks the Nydus manifest (artifactType {@value MediaTypes#NYDUS_MANIFEST_ARTIFACT}, or the
 * older platform os.features {@value MediaTypes#NYDUS_OS_FEATURE}) for this machine's platform; then
 * checks the manifest is a Nydus image: data layers of type {@value MediaTypes#NYDUS_BLOB} (or
 * annotated nydus-blob) and one bootstrap layer annotated nydus-bootstrap, RAFS v6.
 */
final class ManifestResolver {
    /** Manifests are small; a registry sending more is refused rather than buffered. */
    static final int MAX_MANIFEST_BYTES = 4 << 20;

    private final RegistryClient client;

    ManifestResolver(RegistryClient client) {
        this.client = client;
    }

    ResolvedImage resolve(ImageReference ref) throws IOException {
        Fetched top = fetch(ref, ref.manifestReference());
        JsonNode manifest = top.json;
        String digest = top.digest;
        if (isIndex(top.mediaType, manifest)) {
            String chosen = chooseFromIndex(ref, manifest);
            Fetched m = fetch(ref, chosen);
            if (isIndex(m.mediaType, m.json)) {
                throw new RegistryException(ref + ": the index's Nydus entry " + chosen + " is itself an index");
            }
            manifest = m.json;
            digest = m.digest;
        }
        return nydusImage(ref.withDigest(digest), digest, manifest);
    }

    private record Fetched(JsonNode json, String mediaType, String digest) {
    }

    private Fetched fetch(ImageReference ref, String reference) throws IOException {
        RegistryHost host = client.host(ref.registry());
        URI uri = host.resolve("/v2/" + ref.repository() + "/manifests/" + reference);
        HttpCall<byte[]> call = new HttpCall<byte[]>("GET", uri, () -> info -> new Bodies.Bounded(MAX_MANIFEST_BYTES,
                ref.registry() + "/" + ref.repository() + (reference.startsWith("sha256:") ? "@" : ":") + reference + ": the manifest"))
                .header("Accept", MediaTypes.MANIFEST_ACCEPT)
                .scope(RegistryClient.pullScope(ref))
                .redirects(true);
        HttpCall.Reply<byte[]> r = client.send(host, call);
        if (r.status() == 404) {
            throw new RegistryException(ref.registry() + "/" + ref.repository() + ":" + reference + ": no such image (manifest unknown"
                    + (reference.startsWith("sha256:") ? "" : "; is the tag right?") + ")", 404);
        }
        if (r.status() != 200) {
            throw client.statusError(call, r, ref.toString());
        }
        byte[] body = r.body();
        host.metrics.bytes(body.length);
        String digest = Digests.sha256(body);
        if (reference.startsWith("sha256:") && !reference.equals(digest)) {
            throw new RegistryException(ref.registry() + "/" + ref.repository() + "@" + reference
                    + ": the registry sent a manifest whose digest is " + digest);
        }
        JsonNode json;
        try {
            json = JsonTrees.read(body);
        } catch (IOException e) {
            throw new RegistryException(ref + ": the manifest is not valid JSON");
        }
        if (json == null || !json.isObject()) {
            throw new RegistryException(ref + ": the manifest is not a JSON object");
        }
        String contentType = r.headers().firstValue("Content-Type").orElse("");
        int semi = contentType.indexOf(';');
        String mediaType = (semi >= 0 ? contentType.substring(0, semi) : contentType).trim();
        if (json.path("mediaType").isTextual()) {
            mediaType = json.path("mediaType").asText();
        }
        return new Fetched(json, mediaType, digest);
    }

    static boolean isIndex(String mediaType, JsonNode json) {
        return mediaType.equals(MediaTypes.OCI_INDEX) || mediaType.equals(MediaTypes.DOCKER_MANIFEST_LIST)
                || (json.has("manifests") && !json.has("layers"));
    }

    /** The digest of the index entry to use; a one-line error when there is no Nydus entry for this platform. */
    static String chooseFromIndex(ImageReference ref, JsonNode index) throws RegistryException {
        String os = "linux";
        String arch = goArch(System.getProperty("os.arch", ""));
        List<JsonNode> nydus = new ArrayList<>();
        List<String> platforms = new ArrayList<>();
        for (JsonNode m : index.path("manifests")) {
            boolean isNydus = MediaTypes.NYDUS_MANIFEST_ARTIFACT.equals(m.path("artifactType").asText());
            for (JsonNode f : m.path("platform").path("os.features")) {
                isNydus |= MediaTypes.NYDUS_OS_FEATURE.equals(f.asText());
            }
            if (isNydus) {
                nydus.add(m);
                platforms.add(m.path("platform").path("os").asText("?") + "/" + m.path("platform").path("architecture").asText("?"));
            }
        }
        if (nydus.isEmpty()) {
            throw new RegistryException(ref + " is not a Nydus image: its index has no Nydus manifest (artifactType "
                    + MediaTypes.NYDUS_MANIFEST_ARTIFACT + " or os.features " + MediaTypes.NYDUS_OS_FEATURE + ")");
        }
        for (JsonNode m : nydus) {
            JsonNode p = m.path("platform");
            boolean osOk = p.path("os").isMissingNode() || p.path("os").asText().equals(os);
            boolean archOk = p.path("architecture").isMissingNode() || p.path("architecture").asText().equals(arch);
            if (osOk && archOk) {
                String d = m.path("digest").asText("");
                if (!Digests.isSha256(d)) {
                    throw new RegistryException(ref + ": the index's Nydus entry has no valid sha256 digest");
                }
                return d;
            }
        }
        throw new RegistryException(ref + ": the index has no Nydus manifest for " + os + "/" + arch + " (it has "
                + String.join(", ", platforms) + ")");
    }

    /** The JDK's os.arch in Go's (OCI's) spelling. */
    static String goArch(String javaArch) {
        return switch (javaArch.toLowerCase(Locale.ROOT)) {
            case "amd64", "x86_64" -> "amd64";
            case "aarch64", "arm64" -> "arm64";
            case "x86", "i386", "i686" -> "386";
            case "ppc64le" -> "ppc64le";
            case "s390x" -> "s390x";
            case "riscv64" -> "riscv64";
            default -> javaArch;
        };
    }

    static ResolvedImage nydusImage(ImageReference ref, String digest, JsonNode manifest) throws RegistryException {
        JsonNode layers = manifest.path("layers");
        if (!layers.isArray() || layers.isEmpty()) {
            throw new RegistryException(ref + ": the manifest lists no layers");
        }
        boolean anyBootstrap = false;
        for (JsonNode l : layers) {
            anyBootstrap |= "true".equals(l.path("annotations").path(MediaTypes.ANNOTATION_NYDUS_BOOTSTRAP).asText());
        }
        if (!anyBootstrap) {
            throw new RegistryException(ref + " is not a Nydus image: no layer is annotated " + MediaTypes.ANNOTATION_NYDUS_BOOTSTRAP
                    + " (convert it with nydusify, or build and push it with strata build + strata push)");
        }
        List<ResolvedImage.Layer> blobs = new ArrayList<>();
        ResolvedImage.Layer bootstrap = null;
        for (JsonNode l : layers) {
            String mediaType = l.path("mediaType").asText("");
            JsonNode ann = l.path("annotations");
            String layerDigest = l.path("digest").asText("");
            long size = l.path("size").asLong(-1);
            if (!Digests.isSha256(layerDigest) || size < 0) {
                throw new RegistryException(ref + ": a layer has no valid sha256 digest and size");
            }
            ResolvedImage.Layer layer = new ResolvedImage.Layer(layerDigest, size);
            if ("true".equals(ann.path(MediaTypes.ANNOTATION_NYDUS_BOOTSTRAP).asText())) {
                if (bootstrap != null) {
                    throw new RegistryException(ref + ": the manifest has two bootstrap layers");
                }
                String fs = ann.path(MediaTypes.ANNOTATION_NYDUS_FS_VERSION).asText("6");
                if (!fs.equals("6")) {
                    throw new RegistryException(ref + ": a RAFS v" + RegistryException.oneLine(fs)
                            + " image; Strata serves RAFS v6 only (nydusify --fs-version 6)");
                }
                bootstrap = layer;
            } else if (mediaType.equals(MediaTypes.NYDUS_BLOB) || "true".equals(ann.path(MediaTypes.ANNOTATION_NYDUS_BLOB).asText())) {
                blobs.add(layer);
            } else {
                throw new RegistryException(ref + " is not a Nydus image: layer " + layerDigest + " (" + RegistryException.oneLine(mediaType)
                        + ") is neither a Nydus blob nor the bootstrap");
            }
        }
        if (bootstrap == null) {
            throw new RegistryException(ref + " is not a Nydus image: no layer is annotated " + MediaTypes.ANNOTATION_NYDUS_BOOTSTRAP);
        }
        return new ResolvedImage(ref, digest, blobs, bootstrap);
    }
}
