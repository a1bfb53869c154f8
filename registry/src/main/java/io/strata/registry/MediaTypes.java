package io.strata.registry;

/** Media types and annotations of OCI/Docker manifests and of Nydus images in registries (design.md section 9). */
public final class MediaTypes {
    private MediaTypes() {
    }

    public static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
    public static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";
    public static final String OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
    public static final String OCI_LAYER_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
    public static final String DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
    public static final String DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
    public static final String DOCKER_LAYER_TAR_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /** A Nydus data blob layer (nydus-snapshotter pkg/converter). */
    public static final String NYDUS_BLOB = "application/vnd.oci.image.layer.nydus.blob.v1";
    /** The artifactType of a Nydus manifest in an OCI index. */
    public static final String NYDUS_MANIFEST_ARTIFACT = "application/vnd.nydus.image.manifest.v1+json";
    /** The platform os.feature that marks a Nydus manifest in an index (older tools). */
    public static final String NYDUS_OS_FEATURE = "nydus.remoteimage.v1";

    public static final String ANNOTATION_NYDUS_BLOB = "containerd.io/snapshot/nydus-blob";
    public static final String ANNOTATION_NYDUS_BOOTSTRAP = "containerd.io/snapshot/nydus-bootstrap";
    public static final String ANNOTATION_NYDUS_FS_VERSION = "containerd.io/snapshot/nydus-fs-version";

    /** The path of the bootstrap inside the bootstrap layer's tar. */
    public static final String BOOTSTRAP_ENTRY = "image/image.boot";

    /** What manifest GETs accept: distribution answers 404 for a type the client does not list. */
    public static final String MANIFEST_ACCEPT = String.join(", ", OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST);
}
