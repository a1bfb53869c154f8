package io.strata.cli;

import io.strata.nbd.TlsConfig;
import io.strata.nbd.TlsMode;
import io.strata.nbd.TlsSetupException;
import java.nio.file.Path;
import java.util.Locale;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * The TLS options of {@code serve nbd}: the mode, the server's certificate chain and key, and the CA
 * that client certificates must chain to with {@code --tls-verify-peer}. Combinations that would not
 * do what they say (a CA nobody checks, peer verification without a CA, credentials with TLS off)
 * are bad arguments rather than silently ignored.
 */
final class TlsOptions {
    @Option(names = "--tls", paramLabel = "off|on|require", defaultValue = "off",
            description = "NBD_OPT_STARTTLS: off (default), on (clients may upgrade), require (every option but STARTTLS is refused until TLS runs).")
    String mode;

    @Option(names = "--tls-cert", paramLabel = "FILE", description = "The server's X.509 certificate chain (PEM, leaf first).")
    Path cert;

    @Option(names = "--tls-key", paramLabel = "FILE", description = "The certificate's private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC; unencrypted).")
    Path key;

    @Option(names = "--tls-ca", paramLabel = "FILE", description = "CA certificates (PEM) that client certificates must chain to; needs --tls-verify-peer.")
    Path ca;

    @Option(names = "--tls-verify-peer", description = "Require a client certificate signed by --tls-ca.")
    boolean verifyPeer;

    /** The TLS configuration the options describe, with its files loaded; any problem is a bad argument. */
    TlsConfig load(CommandLine cmd) {
        TlsMode m;
        try {
            m = TlsMode.valueOf(mode.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(cmd, "--tls wants off, on or require, got '" + mode + "'");
        }
        if (m == TlsMode.OFF) {
            if (cert != null || key != null || ca != null || verifyPeer) {
                throw new CommandLine.ParameterException(cmd, "--tls-cert, --tls-key, --tls-ca and --tls-verify-peer need --tls on or --tls require");
            }
            return TlsConfig.off();
        }
        if (cert == null || key == null) {
            throw new CommandLine.ParameterException(cmd, "--tls " + mode + " needs --tls-cert FILE and --tls-key FILE");
        }
        if (verifyPeer && ca == null) {
            throw new CommandLine.ParameterException(cmd, "--tls-verify-peer needs --tls-ca FILE, the CA client certificates must chain to");
        }
        if (ca != null && !verifyPeer) {
            throw new CommandLine.ParameterException(cmd, "--tls-ca is only used to verify clients: add --tls-verify-peer");
        }
        try {
            return TlsConfig.load(m, cert, key, ca);
        } catch (TlsSetupException e) {
            throw new CommandLine.ParameterException(cmd, e.getMessage());
        }
    }
}
