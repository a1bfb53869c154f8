package io.strata.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** WWW-Authenticate headers as registries send them (distribution, Docker Hub, GHCR, Harbor, quay). */
class AuthChallengeTest {
    @Test
    void bearerWithQuotedParameters() {
        AuthChallenge c = AuthChallenge.choose(List.of(
                "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/ubuntu:pull\""))
                .orElseThrow();
        assertTrue(c.isBearer());
        assertEquals(Optional.of("https://auth.docker.io/token"), c.param("realm"));
        assertEquals(Optional.of("registry.docker.io"), c.param("service"));
        assertEquals(Optional.of("repository:library/ubuntu:pull"), c.param("scope"));
    }

    @Test
    void basicAndTokensAndEscapesAndCase() {
        AuthChallenge b = AuthChallenge.choose(List.of("basic realm=\"a \\\"quoted\\\" realm\"")).orElseThrow();
        assertTrue(b.isBasic());
        assertEquals(Optional.of("a \"quoted\" realm"), b.param("Realm"));
        AuthChallenge t = AuthChallenge.choose(List.of("Bearer realm=https://h/token, service=s")).orElseThrow();
        assertEquals(Optional.of("https://h/token"), t.param("realm"));
        assertEquals(Optional.of("s"), t.param("service"));
    }

    @Test
    void bearerIsPreferredWhenSeveralAreOffered() {
        List<AuthChallenge> all = AuthChallenge.parse(List.of("Basic realm=\"r\", Bearer realm=\"https://t/x\",service=\"s\""));
        assertEquals(2, all.size());
        assertTrue(AuthChallenge.choose(List.of("Basic realm=\"r\"", "Bearer realm=\"https://t/x\"")).orElseThrow().isBearer());
    }

    @Test
    void garbageGivesNoUsableChallenge() {
        assertTrue(AuthChallenge.choose(List.of("", ",,,", "Negotiate abc==", "=\"x\"")).isEmpty());
        assertTrue(AuthChallenge.choose(List.of()).isEmpty());
    }
}
