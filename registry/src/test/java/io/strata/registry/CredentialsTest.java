package io.strata.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
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
        assertEquals(c, Credentials.lookup("h:1", "r", c, Map.of("REGISTRY_AUTH_FILE", "/nonexistent")).orElseThrow());
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
        assertEquals("pod", Credentials.lookup("reg.example:5000", "app", null, env).orElseThrow().username());
        assertEquals("dock", Credentials.lookup("reg.example:5000", "app", null, Map.of("DOCKER_CONFIG", docker.getParent().toString()))
                .orElseThrow().username());
        assertEquals("hub", Credentials.lookup(ImageReference.DOCKER_HUB_HOST, "app", null, env).orElseThrow().username());
        assertTrue(Credentials.lookup("nowhere:1", "app", null, env).isEmpty());
        assertTrue(Credentials.lookup("reg.example:5000", "app", null, Map.of()).isEmpty());
    }

    @Test
    void brokenAuthFilesFailWithoutQuotingThem() throws Exception {
        Path bad = tmp.resolve("bad.json");
        Files.writeString(bad, "{\"auths\": {\"h\": {\"auth\": \"c2VjcmV0LXRva2Vu\" ");
        RegistryException e = assertThrows(RegistryException.class,
                () -> Credentials.lookup("h", "app", null, Map.of("REGISTRY_AUTH_FILE", bad.toString())));
        assertFalse(e.getMessage().contains("c2VjcmV0"), e.getMessage());
        Path notB64 = tmp.resolve("notb64.json");
        Files.writeString(notB64, "{\"auths\":{\"h\":{\"auth\":\"%%%\"}}}");
        assertThrows(RegistryException.class, () -> Credentials.lookup("h", "app", null, Map.of("REGISTRY_AUTH_FILE", notB64.toString())));
    }

    @Test
    void authFilesAreSearchedWherePodmanAndDockerKeepThem() {
        assertEquals(List.of(Path.of("/run/containers/1000/auth.json"), Path.of("/h/.config/containers/auth.json"),
                Path.of("/h/.docker/config.json")), Credentials.authFiles(Map.of("HOME", "/h"), Optional.of(1000)));
        assertEquals(List.of(Path.of("/x/containers/auth.json"), Path.of("/c/containers/auth.json"), Path.of("/d/config.json")),
                Credentials.authFiles(Map.of("HOME", "/h", "XDG_RUNTIME_DIR", "/x", "XDG_CONFIG_HOME", "/c", "DOCKER_CONFIG", "/d"),
                        Optional.of(1000)));
        assertEquals(List.of(Path.of("/a.json"), Path.of("/h/.docker/config.json")),
                Credentials.authFiles(Map.of("HOME", "/h", "REGISTRY_AUTH_FILE", "/a.json", "XDG_RUNTIME_DIR", "/x"), Optional.of(0)));
    }

    @Test
    void theMostSpecificNamespaceKeyWinsWhateverTheOrder() throws Exception {
        Path f = tmp.resolve("auth.json");
        Files.writeString(f, "{\"auths\":{\"quay.io\":{\"auth\":\"" + b64("whole:host") + "\"},"
                + "\"quay.io/orga\":{\"auth\":\"" + b64("orga:bot") + "\"},"
                + "\"Quay.io/orga/app/\":{\"auth\":\"" + b64("app:bot") + "\"},"
                + "\"docker.io/someone\":{\"auth\":\"" + b64("hub:someone") + "\"}}}");
        Map<String, String> env = Map.of("REGISTRY_AUTH_FILE", f.toString());
        assertEquals("app", Credentials.lookup("quay.io", "orga/app", null, env).orElseThrow().username());
        assertEquals("orga", Credentials.lookup("quay.io", "orga/other", null, env).orElseThrow().username());
        assertEquals("orga", Credentials.lookup("quay.io", "orga/app2/x", null, env).orElseThrow().username());
        assertEquals("whole", Credentials.lookup("quay.io", "orgb/app", null, env).orElseThrow().username());
        assertEquals("hub", Credentials.lookup(ImageReference.DOCKER_HUB_HOST, "someone/tool", null, env).orElseThrow().username());
        assertTrue(Credentials.lookup(ImageReference.DOCKER_HUB_HOST, "library/ubuntu", null, env).isEmpty());
        // A key written as a URL names the host, whatever its path says.
        Files.writeString(f, "{\"auths\":{\"https://quay.io/v1/\":{\"auth\":\"" + b64("url:key") + "\"}}}");
        assertEquals("url", Credentials.lookup("quay.io", "orga/app", null, env).orElseThrow().username());
    }

    @Test
    void identityTokensAndUsernamePasswordEntries() throws Exception {
        Path f = tmp.resolve("config.json");
        Files.writeString(f, "{\"auths\":{\"acr.example\":{\"auth\":\"" + b64("00000000-0000-0000-0000-000000000000:")
                + "\",\"identitytoken\":\"refresh-me\"},\"old.example\":{\"username\":\"u\",\"password\":\"p\"},"
                + "\"empty.example\":{}}}");
        Map<String, String> env = Map.of("DOCKER_CONFIG", tmp.toString());
        Credentials acr = Credentials.lookup("acr.example", "app", null, env).orElseThrow();
        assertEquals(Optional.of("refresh-me"), acr.identityToken());
        assertTrue(acr.basicHeader().isEmpty(), "an identity token is never sent as Basic");
        assertFalse(acr.toString().contains("refresh-me"));
        Credentials old = Credentials.lookup("old.example", "app", null, env).orElseThrow();
        assertEquals("u", old.username());
        assertEquals("p", old.password());
        assertTrue(Credentials.lookup("empty.example", "app", null, env).isEmpty());
    }

    /** A docker credential helper as a shell script: answers from a table, records what it was asked. */
    private Path helper(String name, String script) throws Exception {
        Path bin = Files.createDirectories(tmp.resolve("bin"));
        Path exe = bin.resolve("docker-credential-" + name);
        Files.writeString(exe, "#!/bin/sh\n" + script);
        exe.toFile().setExecutable(true);
        return bin;
    }

    @Test
    void credentialHelpersAreAskedAndTheirAnswersUsed() throws Exception {
        Path asked = tmp.resolve("asked");
        helper("teststore", "[ \"$1\" = get ] || exit 9\nread -r url || true\necho \"$url\" >> " + asked + "\n"
                + "case \"$url\" in\n"
                + "  reg.example:5000) echo '{\"ServerURL\":\"reg.example:5000\",\"Username\":\"helperuser\",\"Secret\":\"s3cret\"}' ;;\n"
                + "  https://index.docker.io/v1/) echo '{\"Username\":\"hubuser\",\"Secret\":\"hub-s3cret\"}' ;;\n"
                + "  tok.example) echo '{\"Username\":\"<token>\",\"Secret\":\"refresh-s3cret\"}' ;;\n"
                + "  broken.example) echo 'boom: the keychain is locked'; exit 3 ;;\n"
                + "  *) echo 'credentials not found in native keychain'; exit 1 ;;\n"
                + "esac\n");
        Path bin = helper("fixed", "echo '{\"Username\":\"fixeduser\",\"Secret\":\"x\"}'\n");
        Path config = tmp.resolve("config.json");
        Files.writeString(config, "{\"auths\":{\"reg.example:5000\":{},\"plain.example\":{\"auth\":\"" + b64("file:user") + "\"}},"
                + "\"credsStore\":\"teststore\",\"credHelpers\":{\"special.example\":\"fixed\",\"missing.example\":\"nosuch\"}}");
        Map<String, String> env = Map.of("DOCKER_CONFIG", tmp.toString(), "PATH", bin + ":/usr/bin:/bin");

        Credentials c = Credentials.lookup("reg.example:5000", "app", null, env).orElseThrow();
        assertEquals("helperuser", c.username());
        assertEquals("s3cret", c.password());
        assertEquals("docker-credential-teststore", c.origin());
        assertEquals("hubuser", Credentials.lookup(ImageReference.DOCKER_HUB_HOST, "library/ubuntu", null, env).orElseThrow().username());
        assertEquals(Optional.of("refresh-s3cret"), Credentials.lookup("tok.example", "app", null, env).orElseThrow().identityToken());
        assertEquals("fixeduser", Credentials.lookup("special.example", "app", null, env).orElseThrow().username());
        assertEquals("file", Credentials.lookup("plain.example", "app", null, env).orElseThrow().username(),
                "the store has none for it: the file's auths entry");
        assertTrue(Credentials.lookup("nowhere.example", "app", null, env).isEmpty(), "not found in the store: anonymous");
        assertEquals(List.of("reg.example:5000", "https://index.docker.io/v1/", "tok.example", "plain.example", "nowhere.example"),
                Files.readAllLines(asked));

        RegistryException failed = assertThrows(RegistryException.class, () -> Credentials.lookup("broken.example", "app", null, env));
        assertTrue(failed.getMessage().contains("docker-credential-teststore (from " + config + " credsStore) failed for broken.example:"
                + " exit 3, boom: the keychain is locked"), failed.getMessage());
        RegistryException missing = assertThrows(RegistryException.class, () -> Credentials.lookup("missing.example", "app", null, env));
        assertTrue(missing.getMessage().contains("names the credential helper 'nosuch', but docker-credential-nosuch is not on PATH"),
                missing.getMessage());
        assertFalse(missing.getMessage().contains("s3cret"), missing.getMessage());
    }

    @Test
    void theStoreComesBeforeTheFileAndHostKeysBeforeUrlKeys() throws Exception {
        // docker keeps no password in the file once credsStore is set: a leftover auth entry loses.
        Path bin = helper("store", "read -r url || true\n"
                + "case \"$url\" in\n"
                + "  quay.io) echo '{\"Username\":\"fromstore\",\"Secret\":\"s\"}' ;;\n"
                + "  docker.io) echo '{\"Username\":\"podmanhub\",\"Secret\":\"s\"}' ;;\n"
                + "  *) echo 'credentials not found in native keychain'; exit 1 ;;\n"
                + "esac\n");
        Path config = tmp.resolve("config.json");
        Files.writeString(config, "{\"credsStore\":\"store\",\"auths\":{\"quay.io\":{\"auth\":\"" + b64("stale:old") + "\"}}}");
        Map<String, String> env = Map.of("DOCKER_CONFIG", tmp.toString(), "PATH", bin.toString());
        assertEquals("fromstore", Credentials.lookup("quay.io", "team/app", null, env).orElseThrow().username());
        // podman stores Docker Hub's helper logins as docker.io: asked after docker's name.
        assertEquals("podmanhub", Credentials.lookup(ImageReference.DOCKER_HUB_HOST, "library/x", null, env).orElseThrow().username());

        // docker writes its keys sorted, so a legacy URL key may come first: the host key still wins.
        Path auth = tmp.resolve("auth.json");
        Files.writeString(auth, "{\"auths\":{\"https://quay.io/v1/\":{\"auth\":\"" + b64("stale:old") + "\"},"
                + "\"quay.io\":{\"auth\":\"" + b64("fresh:new") + "\"}}}");
        assertEquals("fresh", Credentials.lookup("quay.io", "team/app", null, Map.of("REGISTRY_AUTH_FILE", auth.toString()))
                .orElseThrow().username());
    }

    @Test
    void aHelperThatLeavesAChildRunningIsAnsweredWithoutWaitingForIt() throws Exception {
        // Its answer, then a child that keeps stdout open for two minutes (an agent it started).
        Path pidFile = tmp.resolve("agent.pid");
        Path bin = helper("agent", "echo '{\"Username\":\"agentuser\",\"Secret\":\"s\"}'\nsleep 120 &\necho $! > " + pidFile + "\nexit 0\n");
        Path config = tmp.resolve("config.json");
        Files.writeString(config, "{\"credsStore\":\"agent\"}");
        long start = System.nanoTime();
        Credentials c = Credentials.lookup("r.example", "app", null, Map.of("DOCKER_CONFIG", tmp.toString(), "PATH", bin + ":/usr/bin:/bin"))
                .orElseThrow();
        assertEquals("agentuser", c.username());
        assertTrue(System.nanoTime() - start < java.util.concurrent.TimeUnit.SECONDS.toNanos(CredentialHelper.TIMEOUT_SECONDS),
                "answered without waiting for the helper's child");
        ProcessHandle.of(Long.parseLong(Files.readString(pidFile).trim())).ifPresent(ProcessHandle::destroyForcibly);
    }

    @Test
    void aHelperThatHangsIsStoppedWithItsChildren() throws Exception {
        Path pidFile = tmp.resolve("child.pid");
        Path bin = helper("hang", "sleep 300 &\necho $! > " + pidFile + "\nwait\n");
        Files.writeString(tmp.resolve("config.json"), "{\"credsStore\":\"hang\"}");
        RegistryException e = assertThrows(RegistryException.class, () -> CredentialHelper.get("hang", "r.example",
                Map.of("PATH", bin + ":/usr/bin:/bin"), "test", 1));
        assertTrue(e.getMessage().contains("docker-credential-hang (from test) did not answer within 1 s"), e.getMessage());
        long child = Long.parseLong(Files.readString(pidFile).trim());
        java.util.Optional<ProcessHandle> h = ProcessHandle.of(child);
        if (h.isPresent()) {
            assertTrue(h.get().onExit().get(10, java.util.concurrent.TimeUnit.SECONDS) != null);
        }
        assertFalse(ProcessHandle.of(child).map(ProcessHandle::isAlive).orElse(false), "the helper's child was stopped");
    }
}
