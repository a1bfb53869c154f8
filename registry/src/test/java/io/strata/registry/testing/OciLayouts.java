package io.strata.registry.testing;

import io.strata.core.testing.HostTools;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.zip.GZIPOutputStream;

/**
 * Images made without Strata's own client: an OCI image layout written here (the layout is simple
 * JSON and content-addressed files) and copied into a registry by skopeo, an independent client.
 * Used for images Strata must refuse: a plain (non-Nydus) OCI image, a "Nydus" image whose bootstrap
 * layer is not a gzip tar.
 */
public final class OciLayouts {
    private OciLayouts() {
    }

    /** One layer: its media type, bytes and annotations. */
    public record Layer(String mediaType, byte[] data, Map<String, String> annotations) {
    }

    public static void requireSkopeo() {
        HostTools.requireTool("skopeo", "skopeo");
    }

    /** A gzip tar with one regular file (for a plain OCI layer). */
    public static byte[] gzipTarWithFile(String name, byte[] content) throws IOException {
        ByteArrayOutputStream tar = new ByteArrayOutputStream();
        byte[] header = new byte[512];
        byte[] n = name.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(n, 0, header, 0, n.length);
        put(header, 100, "0000644");
        put(header, 108, "0000000");
        put(header, 116, "0000000");
        put(header, 124, String.format("%011o", content.length));
        put(header, 136, "00000000000");
        header[156] = '0';
        put(header, 257, "ustar");
        put(header, 263, "00");
        for (int i = 148; i < 156; i++) {
            header[i] = ' ';
        }
        int sum = 0;
        for (byte b : header) {
            sum += b & 0xff;
        }
        put(header, 148, String.format("%06o", sum));
        header[154] = 0;
        tar.write(header);
        tar.write(content);
        tar.write(new byte[(512 - content.length % 512) % 512]);
        tar.write(new byte[1024]);
        ByteArrayOutputStream gz = new ByteArrayOutputStream();
        try (GZIPOutputStream out = new GZIPOutputStream(gz)) {
            out.write(tar.toByteArray());
        }
        return gz.toByteArray();
    }

    private static void put(byte[] h, int at, String s) {
        byte[] b = s.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(b, 0, h, at, b.length);
    }

    /** Writes an OCI layout with one image (tag {@code tag}) of these layers and pushes it with skopeo; returns the manifest digest. */
    public static String pushWithSkopeo(Path dir, RegistryFixture registry, String repoAndTag, List<Layer> layers)
            throws IOException {
        requireSkopeo();
        Path layout = Files.createDirectories(dir);
        Path blobs = Files.createDirectories(layout.resolve("blobs/sha256"));
        Files.writeString(layout.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        List<String> layerJson = new ArrayList<>();
        List<String> diffIds = new ArrayList<>();
        for (Layer l : layers) {
            String d = write(blobs, l.data());
            StringBuilder ann = new StringBuilder();
            l.annotations().forEach((k, v) -> ann.append(ann.length() == 0 ? "" : ",").append('"').append(k).append("\":\"").append(v).append('"'));
            layerJson.add("{\"mediaType\":\"" + l.mediaType() + "\",\"digest\":\"" + d + "\",\"size\":" + l.data().length
                    + (l.annotations().isEmpty() ? "" : ",\"annotations\":{" + ann + "}") + "}");
            diffIds.add("\"" + d + "\"");
        }
        String config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":["
                + String.join(",", diffIds) + "]}}";
        byte[] configBytes = config.getBytes(StandardCharsets.UTF_8);
        String configDigest = write(blobs, configBytes);
        String manifest = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":"
                + "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" + configDigest + "\",\"size\":" + configBytes.length
                + "},\"layers\":[" + String.join(",", layerJson) + "]}";
        byte[] manifestBytes = manifest.getBytes(StandardCharsets.UTF_8);
        String manifestDigest = write(blobs, manifestBytes);
        Files.writeString(layout.resolve("index.json"), "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
                + "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" + manifestDigest + "\",\"size\":" + manifestBytes.length
                + ",\"annotations\":{\"org.opencontainers.image.ref.name\":\"t\"}}]}");
        HostTools.run(List.of("skopeo", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false",
                "oci:" + layout + ":t", "docker://" + registry.reference(repoAndTag)));
        return manifestDigest;
    }

    private static String write(Path blobs, byte[] data) throws IOException {
        String hex = HexFormat.of().formatHex(sha256(data));
        Files.write(blobs.resolve(hex), data);
        return "sha256:" + hex;
    }

    static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
