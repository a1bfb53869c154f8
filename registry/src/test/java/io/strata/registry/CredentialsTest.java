package io.strata.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CredentialsTest {
    @TempDir
    Path tmp;

    private static String b64(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void explicitCredsComeFirstAndNeverPrintThePassword() throws Exception {
        Credentials c = Credentials.parse("u:p:q", "--creds");
        assertEquals("u", c.username());
        assertEquals("p:q", c.password());
        assertFalse(c.toString().contains("p:q"));
        assertEquals(c, Credentials.lookup("h:1", c, Map.of("REGISTRY_AUTH_FILE", "/nonexistent")).orElseThrow());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Credentials.parse("nocolon-secret", "--creds"));
        assertFalse(e.getMessage().contains("secret"));
    }

    @Test
    void authFilesInOrderAndKeyForms() throws Exception {
        Path podman = tmp.resolve("auth.json");
        Files.writeString(podman, "{\"auths\":{\"other:5000\":{\"auth\":\"" + b64("x:y") + "\"},"
                + "\"https://Reg.example:5000/v2/\":{\"auth\":\"" + b64("pod:man") + "\"}}}");
        Path docker = Files.createDirectories(tmp.resolve("docker")).resolve("config.json");
        Files.writeString(docker, "{\"auths\":{\"reg.example:5000\":{\"auth\":\"" + b64("dock:er") + "\"},"
                + "\"https://index.docker.io/v1/\":{\"auth\":\"" + b64("hub:user") + "\"}}}");
        Map<String, String> env = Map.of("REGISTRY_AUTH_FILE", podman.toString(), "DOCKER_CONFIG", docker.getParent().toString());
        assertEquals("pod", Credentials.lookup("reg.example:5000", null, env).orElseThrow().username());
        assertEquals("dock", Credentials.lookup("reg.example:5000", null, Map.of("DOCKER_CONFIG", docker.getParent().toString()))
                .orElseThrow().username());
        assertEquals("hub", Credentials.lookup(ImageReference.DOCKER_HUB_HOST, null, env).orElseThrow().username());
        assertTrue(Credentials.lookup("nowhere:1", null, env).isEmpty());
        assertTrue(Credentials.lookup("reg.example:5000", null, Map.of()).isEmpty());
    }

    @Test
    void brokenAuthFilesFailWithoutQuotingThem() throws Exception {
        Path bad = tmp.resolve("bad.json");
        Files.writeString(bad, "{\"auths\": {\"h\": {\"auth\": \"c2VjcmV0LXRva2Vu\" ");
        RegistryException e = assertThrows(RegistryException.class,
                () -> Credentials.lookup("h", null, Map.of("REGISTRY_AUTH_FILE", bad.toString())));
        assertFalse(e.getMessage().contains("c2VjcmV0"), e.getMessage());
        Path notB64 = tmp.resolve("notb64.json");
        Files.writeString(notB64, "{\"auths\":{\"h\":{\"auth\":\"%%%\"}}}");
        assertThrows(RegistryException.class, () -> Credentials.lookup("h", null, Map.of("REGISTRY_AUTH_FILE", notB64.toString())));
    }
}
