package io.strata.builder.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;

/** Writes a minimal OCI image layout by hand, for inputs no tool would produce (broken layers). */
public final class OciWriter {
    private OciWriter() {
    }

    public static String digest(byte[] data) throws Exception {
        return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    }

    private static String blob(Path dir, byte[] data) throws Exception {
        String d = digest(data);
        Path p = dir.resolve("blobs/sha256").resolve(d.substring(7));
        Files.createDirectories(p.getParent());
        Files.write(p, data);
        return d;
    }

    /** Writes the layout; returns the layer digests in order. */
    public static List<String> write(Path dir, List<byte[]> layers, String layerMediaType) throws Exception {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        byte[] config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}"
                .getBytes(StandardCharsets.UTF_8);
        String configDigest = blob(dir, config);
        StringBuilder ls = new StringBuilder();
        List<String> digests = new java.util.ArrayList<>();
        for (byte[] l : layers) {
            String d = blob(dir, l);
            digests.add(d);
            ls.append(ls.length() == 0 ? "" : ",").append("{\"mediaType\":\"").append(layerMediaType)
                    .append("\",\"digest\":\"").append(d).append("\",\"size\":").append(l.length).append('}');
        }
        byte[] manifest = ("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                + "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" + configDigest
                + "\",\"size\":" + config.length + "},\"layers\":[" + ls + "]}").getBytes(StandardCharsets.UTF_8);
        String md = blob(dir, manifest);
        Files.writeString(dir.resolve("index.json"), "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
                + "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" + md + "\",\"size\":" + manifest.length + "}]}");
        return digests;
    }

    public static Path blobPath(Path dir, String digest) {
        return dir.resolve("blobs/sha256").resolve(digest.substring(7));
    }
}
