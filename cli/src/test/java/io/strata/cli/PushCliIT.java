package io.strata.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.strata.core.testing.HostTools;
import io.strata.registry.testing.RegistryFixture;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code strata push} through bin/strata against the real registry, checked with skopeo; its errors. */
class PushCliIT {
    @TempDir
    Path tmp;

    private Path buildImage() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src/dir"));
        Files.writeString(tmp.resolve("src/hello.txt"), "hello from strata push\n");
        byte[] big = new byte[3 << 20];
        new Random(8).nextBytes(big);
        Files.write(src.resolve("random.bin"), big);
        Path out = tmp.resolve("img");
        StrataProcess.Run b = StrataProcess.run(tmp, "build", tmp.resolve("src").toString(), "-o", out.toString(),
                "--chunk-size", "256K", "--source-date-epoch", "1700000000");
        assertEquals(0, b.code(), b.err());
        return out;
    }

    @Test
    void pushesANydusImageSkopeoCanRead() throws Exception {
        HostTools.requireTool("skopeo", "skopeo");
        Path image = buildImage();
        try (RegistryFixture registry = RegistryFixture.anonymous(tmp.resolve("registry"))) {
            String ref = registry.reference("cli/app:v1");
            StrataProcess.Run p = StrataProcess.run(tmp, "push", image.toString(), "docker://" + ref);
            assertEquals(0, p.code(), p.err());
            assertTrue(p.out().matches(ref.replace(".", "\\.") + "@sha256:[0-9a-f]{64}\n"), p.out());
            assertTrue(p.err().contains("push: bootstrap layer: uploaded"), p.err());
            String digest = p.out().trim().substring(p.out().indexOf('@') + 1);

            JsonNode m = new ObjectMapper().readTree(HostTools.run(List.of("skopeo", "inspect", "--tls-verify=false", "--raw",
                    "docker://" + ref)));
            JsonNode layers = m.path("layers");
            JsonNode blobLayer = layers.get(0);
            assertEquals("application/vnd.oci.image.layer.nydus.blob.v1", blobLayer.path("mediaType").asText());
            assertEquals("true", blobLayer.path("annotations").path("containerd.io/snapshot/nydus-blob").asText());
            assertTrue(Files.isRegularFile(image.resolve("blobs").resolve(blobLayer.path("digest").asText().substring(7))));
            JsonNode boot = layers.get(layers.size() - 1);
            assertEquals("application/vnd.oci.image.layer.v1.tar+gzip", boot.path("mediaType").asText());
            assertEquals("true", boot.path("annotations").path("containerd.io/snapshot/nydus-bootstrap").asText());
            assertEquals("6", boot.path("annotations").path("containerd.io/snapshot/nydus-fs-version").asText());
            JsonNode summary = new ObjectMapper().readTree(HostTools.run(List.of("skopeo", "inspect", "--tls-verify=false",
                    "docker://" + ref)));
            assertEquals(digest, summary.path("Digest").asText());

            // Again, to another repository mounting from the first: nothing is uploaded.
            StrataProcess.Run again = StrataProcess.run(tmp, "push", image.toString(), registry.reference("cli/copy:v1"),
                    "--from", "cli/app");
            assertEquals(0, again.code(), again.err());
            assertTrue(again.out().endsWith("@" + digest + "\n"), again.out());
            assertFalse(again.err().contains(": uploaded"), again.err());
            assertTrue(again.err().contains("mounted from cli/app"), again.err());
        }
    }

    @Test
    void wrongCredentialsAndBadArgumentsAreOneLine() throws Exception {
        Path image = buildImage();
        try (RegistryFixture registry = RegistryFixture.htpasswd(tmp.resolve("registry"), "carol", "right-password")) {
            String ref = registry.reference("private/app:v1");
            StrataProcess.Run wrong = StrataProcess.run(tmp, "push", image.toString(), ref, "--creds", "carol:wrong-password");
            assertEquals(1, wrong.code(), wrong.err());
            assertEquals(1, wrong.err().lines().filter(l -> !l.startsWith("push: ")).count(), wrong.err());
            assertTrue(wrong.err().contains("refused the credentials of user 'carol' (from --creds)"), wrong.err());
            assertFalse(wrong.err().contains("wrong-password") || wrong.out().contains("wrong-password"), wrong.err());
            StrataProcess.Run ok = StrataProcess.run(tmp, "push", image.toString(), ref, "--creds", "carol:right-password");
            assertEquals(0, ok.code(), ok.err());
            assertFalse(ok.err().contains("right-password"), ok.err());

            Path authFile = tmp.resolve("auth.json");
            String b64 = java.util.Base64.getEncoder().encodeToString("carol:right-password".getBytes(StandardCharsets.UTF_8));
            Files.writeString(authFile, "{\"auths\":{\"" + registry.registry() + "\":{\"auth\":\"" + b64 + "\"}}}");
            StrataProcess.Run viaFile = StrataProcess.run(tmp, java.util.Map.of("REGISTRY_AUTH_FILE", authFile.toString()),
                    "push", image.toString(), registry.reference("private/app:v2"));
            assertEquals(0, viaFile.code(), viaFile.err());
        }
        for (String[] args : new String[][] {
            {"push", image.toString(), "127.0.0.1:1/UPPER:case"},
            {"push", tmp.resolve("nope").toString(), "127.0.0.1:1/a:b"},
            {"push", Files.createDirectories(tmp.resolve("not-an-image")).toString(), "127.0.0.1:1/a:b"},
            {"push", image.toString(), "127.0.0.1:1/a:b", "--creds", "nocolon"},
        }) {
            StrataProcess.Run r = StrataProcess.run(tmp, args);
            assertEquals(2, r.code(), String.join(" ", args) + ": " + r.err());
            assertEquals(1, r.err().lines().count(), r.err());
        }
        // Nothing listens on port 1: exit 1, one line, after bounded retries.
        StrataProcess.Run down = StrataProcess.run(tmp, "push", image.toString(), "127.0.0.1:1/a:b", "--registry-retries", "2");
        assertEquals(1, down.code(), down.err());
        assertEquals(1, down.err().lines().count(), down.err());
        assertTrue(down.err().startsWith("strata push: ") && down.err().contains("could not connect"), down.err());
    }
}
