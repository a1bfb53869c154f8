package io.strata.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;
import org.junit.jupiter.api.Test;

class ImageReferenceTest {
    private static final String DIGEST = "sha256:" + "0123456789abcdef".repeat(4);

    @Test
    void hostPortRepositoryTag() {
        ImageReference r = ImageReference.parse("127.0.0.1:5000/strata/demo:v1");
        assertEquals("127.0.0.1", r.host());
        assertEquals(Optional.of(5000), r.port());
        assertEquals("127.0.0.1:5000", r.registry());
        assertEquals("strata/demo", r.repository());
        assertEquals(Optional.of("v1"), r.tag());
        assertEquals(Optional.empty(), r.digest());
        assertEquals("v1", r.manifestReference());
        assertEquals("127.0.0.1:5000/strata/demo:v1", r.toString());
    }

    @Test
    void dockerSchemeIsDroppedAndTagDefaultsToLatest() {
        ImageReference r = ImageReference.parse("docker://registry.example.com/a/b/c");
        assertEquals("registry.example.com", r.registry());
        assertEquals(Optional.empty(), r.port());
        assertEquals("a/b/c", r.repository());
        assertEquals("latest", r.manifestReference());
    }

    @Test
    void digestWinsOverTag() {
        ImageReference r = ImageReference.parse("localhost:5000/x:tag@" + DIGEST);
        assertEquals("localhost", r.host());
        assertEquals(DIGEST, r.manifestReference());
        assertEquals(Optional.of("tag"), r.tag());
        assertEquals("localhost:5000/x:tag@" + DIGEST, r.toString());
        ImageReference d = ImageReference.parse("localhost/x@" + DIGEST);
        assertEquals(Optional.empty(), d.tag());
        assertEquals(DIGEST, d.manifestReference());
    }

    @Test
    void ipv6HostInBrackets() {
        ImageReference r = ImageReference.parse("[::1]:5000/repo:t");
        assertEquals("[::1]", r.host());
        assertEquals("[::1]:5000", r.registry());
    }

    @Test
    void dockerHubShortNames() {
        ImageReference r = ImageReference.parse("ubuntu:22.04");
        assertEquals("registry-1.docker.io", r.host());
        assertEquals("library/ubuntu", r.repository());
        assertEquals("22.04", r.manifestReference());
        assertEquals("someone/tool", ImageReference.parse("someone/tool").repository());
    }

    @Test
    void dockerHubsOwnNamesAreDockerHub() {
        for (String name : new String[] {"docker.io/ubuntu:22.04", "index.docker.io/ubuntu:22.04", "docker://Docker.IO/ubuntu:22.04"}) {
            ImageReference r = ImageReference.parse(name);
            assertEquals("registry-1.docker.io", r.registry(), name);
            assertEquals("library/ubuntu", r.repository(), name);
            assertEquals(ImageReference.parse("ubuntu:22.04"), r, name);
        }
        assertEquals("someone/tool", ImageReference.parse("docker.io/someone/tool").repository());
        // With a port it is somebody's own registry that happens to be called so.
        ImageReference own = ImageReference.parse("docker.io:5000/tool");
        assertEquals("docker.io:5000", own.registry());
        assertEquals("tool", own.repository());
    }

    @Test
    void aPasswordInAReferenceIsRefusedWithoutBeingEchoed() {
        for (String s : new String[] {"alice:s3cret@registry.example.com/a:b", "docker://alice:s3cret@registry.example.com/a",
            "alice:s3cret@x"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ImageReference.parse(s), s);
            assertFalse(e.getMessage().contains("s3cret"), e.getMessage());
            assertFalse(e.getMessage().contains("alice"), e.getMessage());
            assertTrue(e.getMessage().contains("--creds"), e.getMessage());
        }
        assertEquals("library/ubuntu", ImageReference.parse("ubuntu@" + DIGEST).repository());
    }

    @Test
    void hostIsLowerCased() {
        assertEquals("registry.example.com", ImageReference.parse("Registry.Example.COM/a").host());
    }

    @Test
    void withTagWithDigestInRepository() {
        ImageReference r = ImageReference.parse("h.example:1/a:b");
        assertEquals("h.example:1/a:c", r.withTag("c").toString());
        assertEquals("h.example:1/a:b@" + DIGEST, r.withDigest(DIGEST).toString());
        assertEquals("h.example:1/other/x:latest", r.inRepository("other/x").toString());
        assertEquals(ImageReference.parse("docker://h.example:1/a:b"), r);
    }

    @Test
    void badReferencesGiveOneLineMessages() {
        String[] bad = {
            "", "docker://", "host.example/", "host.example/UPPER", "host.example/a//b", "host.example/a:",
            "host.example/a:-tag", "host.example/a@sha256:abc", "host.example/a@md5:" + "0".repeat(32),
            "host.example:0/a", "host.example:65536/a", "host.example:99999999999/a", "bad_host.example/a",
            "host.example/a-/b", "host.example/a:" + "t".repeat(129), "host.example/a\nb", "[zz]:5/a",
            "host.example/" + "a".repeat(256),
        };
        for (String s : bad) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ImageReference.parse(s), s);
            assertTrue(e.getMessage().startsWith("bad image reference '"), e.getMessage());
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
        }
    }

    @Test
    void looksLikeReference() {
        assertTrue(ImageReference.looksLikeReference("docker://x/y"));
        assertTrue(ImageReference.looksLikeReference("127.0.0.1:5000/a:b"));
        assertTrue(ImageReference.looksLikeReference("localhost/a"));
        assertTrue(ImageReference.looksLikeReference("registry.example.com/a/b"));
        assertFalse(ImageReference.looksLikeReference("image/bootstrap"));
        assertFalse(ImageReference.looksLikeReference("./a.b/c"));
        assertFalse(ImageReference.looksLikeReference("/abs/path"));
        assertFalse(ImageReference.looksLikeReference("bootstrap"));
    }
}
