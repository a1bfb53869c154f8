package io.strata.registry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link JsonTrees} reads what {@code ObjectMapper.readTree} reads, into equal trees (databind is the
 * oracle), and refuses what it refuses.
 */
class JsonTreesTest {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    @Test
    void sameTreesAsObjectMapper() throws IOException {
        List<String> docs = List.of(
                "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                        + "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:"
                        + "a".repeat(64) + "\",\"size\":237},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.nydus.blob.v1\","
                        + "\"digest\":\"sha256:" + "b".repeat(64) + "\",\"size\":610520612,"
                        + "\"annotations\":{\"containerd.io/snapshot/nydus-blob\":\"true\"}}]}",
                "{\"manifests\":[{\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\",\"os.features\":[\"nydus.remoteimage.v1\"]}}]}",
                "{\"token\":\"abc\",\"access_token\":\"def\",\"expires_in\":300,\"issued_at\":\"2026-12-02T00:00:00Z\"}",
                "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\",\"detail\":null}]}",
                "{\"big\":123456789012345678901234567890,\"long\":9007199254740993,\"neg\":-5,\"f\":1.5e3,\"t\":true,\"n\":null}",
                "{\"dup\":1,\"dup\":\"last wins\",\"esc\":\"\\u00e9\\n\\\"q\\\" \\ud83d\\ude00\"}",
                "[1,[2,[3,{}]],[]]",
                "\"just a string\"",
                "42",
                "{\"a\":1} trailing",
                "  ");
        for (String d : docs) {
            byte[] bytes = d.getBytes(StandardCharsets.UTF_8);
            JsonNode expected = MAPPER.readTree(bytes);
            JsonNode actual = JsonTrees.read(bytes);
            assertEquals(expected, actual, d);
            assertEquals(expected.getNodeType(), actual.getNodeType(), d);
            assertEquals(expected, JsonTrees.read(d), d);
        }
    }

    @Test
    void malformedDocumentsAreRefusedAsObjectMapperRefusesThem() {
        List<String> bad = List.of("{\"a\":1", "{\"a\":}", "[1,2", "{a:1}", "{\"a\" 1}", "[1,]x", "\u0000", "{\"a\":tru}",
                "[".repeat(2000) + "]".repeat(2000));
        for (String d : bad) {
            byte[] bytes = d.getBytes(StandardCharsets.UTF_8);
            assertThrows(IOException.class, () -> MAPPER.readTree(bytes), () -> "databind accepted " + d);
            IOException e = assertThrows(IOException.class, () -> JsonTrees.read(bytes), () -> "accepted " + d);
            assertTrue(e instanceof com.fasterxml.jackson.core.JacksonException, e::toString);
        }
    }
}
