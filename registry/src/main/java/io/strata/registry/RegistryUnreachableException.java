package io.strata.registry;

/**
 * The registry gave no answer: a connection refused or reset, a name that does not resolve, no answer
 * within a deadline, every try of a retry budget ending so. Unlike a {@link RegistryException} with an
 * answer in it ("unknown tag", "not a Nydus image", a digest mismatch), this one says nothing about the
 * image, so a caller may fall back to what it resolved before.
 */
public final class RegistryUnreachableException extends RegistryException {
    private static final long serialVersionUID = 1L;

    RegistryUnreachableException(String message, Throwable cause) {
        super(message, 0, cause);
    }
}
