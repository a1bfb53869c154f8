package io.strata.nbd;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import org.bouncycastle.asn1.ASN1Encodable;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.ASN1Primitive;
import org.bouncycastle.asn1.DERNull;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.pkcs.RSAPrivateKey;
import org.bouncycastle.asn1.sec.ECPrivateKey;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.asn1.x9.X9ObjectIdentifiers;

/**
 * Reads X.509 certificates and private keys from PEM files with the JDK's own factories. Keys come
 * in the three forms the usual tools write: PKCS#8 ({@code BEGIN PRIVATE KEY}: openssl genpkey,
 * openssl 3's genrsa), PKCS#1 ({@code BEGIN RSA PRIVATE KEY}) and SEC1 ({@code BEGIN EC PRIVATE KEY}),
 * which certtool writes. The JDK's KeyFactory reads only PKCS#8, so the other two are wrapped in a
 * PKCS#8 envelope first (BouncyCastle's ASN.1 classes, already on the classpath for BLAKE3, build
 * it). Text around the blocks (certtool prints the key's details above it) is ignored.
 */
final class PemFiles {
    private PemFiles() {
    }

    /** One PEM block: the label after BEGIN and the decoded DER bytes. */
    record Block(String label, byte[] der) {
    }

    /** Every certificate in {@code file}, in order (a chain starts with the leaf). */
    static List<X509Certificate> certificates(Path file, String what) throws TlsSetupException {
        List<X509Certificate> certs = new ArrayList<>();
        try {
            CertificateFactory cf = CertificateFactory.getInstance("X.509");
            for (Block b : blocks(file, what)) {
                if (b.label().equals("CERTIFICATE")) {
                    certs.add((X509Certificate) cf.generateCertificate(new ByteArrayInputStream(b.der())));
                }
            }
        } catch (CertificateException e) {
            throw new TlsSetupException(what + " " + file + ": not a valid X.509 certificate: " + e.getMessage(), e);
        }
        if (certs.isEmpty()) {
            throw new TlsSetupException(what + " " + file + ": no PEM certificate (BEGIN CERTIFICATE) in it");
        }
        return certs;
    }

    /** The one private key in {@code file}. */
    static PrivateKey privateKey(Path file, String what) throws TlsSetupException {
        PrivateKey key = null;
        for (Block b : blocks(file, what)) {
            byte[] pkcs8;
            switch (b.label()) {
                case "PRIVATE KEY":
                    pkcs8 = b.der();
                    break;
                case "RSA PRIVATE KEY":
                    pkcs8 = fromPkcs1(b.der(), file, what);
                    break;
                case "EC PRIVATE KEY":
                    pkcs8 = fromSec1(b.der(), file, what);
                    break;
                case "ENCRYPTED PRIVATE KEY":
                    throw new TlsSetupException(what + " " + file + ": the key is encrypted; give it unencrypted"
                            + " (openssl pkey -in KEY -out PLAIN), readable by the server only");
                default:
                    continue; // EC PARAMETERS (openssl ecparam -genkey), certificates kept beside the key
            }
            if (key != null) {
                throw new TlsSetupException(what + " " + file + ": holds more than one private key");
            }
            key = decode(pkcs8, file, what);
        }
        if (key == null) {
            throw new TlsSetupException(what + " " + file + ": no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) in it");
        }
        return key;
    }

    /**
     * Refuses a server certificate that has expired or is not valid yet: every client's handshake
     * would fail ("certificate not trusted"), with nothing in the server's log to say why. qemu-nbd
     * refuses to start with one too.
     */
    static void checkValidNow(X509Certificate cert, Path certFile) throws TlsSetupException {
        try {
            cert.checkValidity();
        } catch (java.security.cert.CertificateExpiredException e) {
            throw new TlsSetupException("the certificate in " + certFile + " (" + cert.getSubjectX500Principal().getName()
                    + ") expired on " + cert.getNotAfter().toInstant());
        } catch (java.security.cert.CertificateNotYetValidException e) {
            throw new TlsSetupException("the certificate in " + certFile + " (" + cert.getSubjectX500Principal().getName()
                    + ") is not valid before " + cert.getNotBefore().toInstant() + " (is the clock right?)");
        }
    }

    /**
     * Checks that {@code key} belongs to {@code cert} by signing with one and verifying with the
     * other: a mismatch would otherwise surface only as every client's handshake failing.
     */
    static void checkPair(PrivateKey key, X509Certificate cert, Path keyFile, Path certFile) throws TlsSetupException {
        String alg;
        switch (key.getAlgorithm()) {
            case "RSA": alg = "SHA256withRSA"; break;
            case "EC": alg = "SHA256withECDSA"; break;
            case "Ed25519": case "Ed448": case "EdDSA": alg = key.getAlgorithm(); break;
            default: return; // RSASSA-PSS needs parameters; the handshake checks it
        }
        PublicKey pub = cert.getPublicKey();
        boolean ok;
        try {
            byte[] probe = "strata tls key check".getBytes(StandardCharsets.US_ASCII);
            Signature s = Signature.getInstance(alg);
            s.initSign(key);
            s.update(probe);
            byte[] sig = s.sign();
            Signature v = Signature.getInstance(alg);
            v.initVerify(pub);
            v.update(probe);
            ok = v.verify(sig);
        } catch (GeneralSecurityException e) {
            ok = false;
        }
        if (!ok) {
            throw new TlsSetupException("private key " + keyFile + " does not belong to the certificate in " + certFile
                    + " (" + cert.getSubjectX500Principal().getName() + ")");
        }
    }

    static List<Block> blocks(Path file, String what) throws TlsSetupException {
        String text;
        if (io.strata.core.os.InputFiles.problem(file) != null) {
            // A named FIFO would block the read until something writes to it (a pipe as /dev/fd/N has
            // a writer: <(...) keeps a key off the disk); a directory fails obscurely.
            throw new TlsSetupException(what + " " + file + ": not a regular file");
        }
        try {
            text = Files.readString(file, StandardCharsets.ISO_8859_1);
        } catch (NoSuchFileException e) {
            throw new TlsSetupException(what + " " + file + ": no such file");
        } catch (AccessDeniedException e) {
            throw new TlsSetupException(what + " " + file + ": permission denied");
        } catch (IOException e) {
            throw new TlsSetupException(what + " " + file + ": cannot read: " + e.getMessage(), e);
        }
        List<Block> blocks = new ArrayList<>();
        String label = null;
        StringBuilder body = new StringBuilder();
        for (String line : text.split("\r?\n")) {
            String l = line.strip();
            if (label == null) {
                if (l.startsWith("-----BEGIN ") && l.endsWith("-----")) {
                    label = l.substring(11, l.length() - 5);
                    body.setLength(0);
                }
            } else if (l.equals("-----END " + label + "-----")) {
                try {
                    blocks.add(new Block(label, Base64.getMimeDecoder().decode(body.toString())));
                } catch (IllegalArgumentException e) {
                    throw new TlsSetupException(what + " " + file + ": bad base64 in the " + label + " block");
                }
                label = null;
            } else if (l.contains(":")) {
                // RFC 1421 headers (Proc-Type: 4,ENCRYPTED) mark openssl's legacy encrypted keys.
                throw new TlsSetupException(what + " " + file + ": the " + label + " block has headers ('" + l
                        + "'): encrypted keys are not supported");
            } else {
                body.append(l);
            }
        }
        if (label != null) {
            throw new TlsSetupException(what + " " + file + ": the " + label + " block has no END line");
        }
        return blocks;
    }

    private static byte[] fromPkcs1(byte[] der, Path file, String what) throws TlsSetupException {
        try {
            RSAPrivateKey rsa = RSAPrivateKey.getInstance(ASN1Primitive.fromByteArray(der));
            return new PrivateKeyInfo(new AlgorithmIdentifier(PKCSObjectIdentifiers.rsaEncryption, DERNull.INSTANCE), rsa).getEncoded();
        } catch (IOException | RuntimeException e) {
            throw new TlsSetupException(what + " " + file + ": not a valid PKCS#1 RSA key: " + e.getMessage(), e);
        }
    }

    /** SEC1 (RFC 5915) names its curve in the optional [0] parameters; PKCS#8 moves it to the algorithm. */
    private static byte[] fromSec1(byte[] der, Path file, String what) throws TlsSetupException {
        try {
            ECPrivateKey ec = ECPrivateKey.getInstance(ASN1Primitive.fromByteArray(der));
            ASN1Encodable curve = ec.getParametersObject();
            if (curve == null) {
                throw new TlsSetupException(what + " " + file + ": the EC key does not name its curve");
            }
            return new PrivateKeyInfo(new AlgorithmIdentifier(X9ObjectIdentifiers.id_ecPublicKey, curve), ec).getEncoded();
        } catch (IOException | RuntimeException e) {
            throw new TlsSetupException(what + " " + file + ": not a valid SEC1 EC key: " + e.getMessage(), e);
        }
    }

    private static PrivateKey decode(byte[] pkcs8, Path file, String what) throws TlsSetupException {
        String algorithm;
        try {
            ASN1ObjectIdentifier oid = PrivateKeyInfo.getInstance(pkcs8).getPrivateKeyAlgorithm().getAlgorithm();
            algorithm = jdkAlgorithm(oid.getId());
        } catch (RuntimeException e) {
            throw new TlsSetupException(what + " " + file + ": not a valid PKCS#8 key: " + e.getMessage(), e);
        }
        if (algorithm == null) {
            throw new TlsSetupException(what + " " + file + ": unsupported key algorithm (RSA, EC, Ed25519, Ed448 are)");
        }
        try {
            return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
        } catch (GeneralSecurityException e) {
            throw new TlsSetupException(what + " " + file + ": not a valid " + algorithm + " key: " + e.getMessage(), e);
        }
    }

    private static String jdkAlgorithm(String oid) {
        switch (oid) {
            case "1.2.840.113549.1.1.1": return "RSA";
            case "1.2.840.113549.1.1.10": return "RSASSA-PSS";
            case "1.2.840.10045.2.1": return "EC";
            case "1.3.101.112": return "Ed25519";
            case "1.3.101.113": return "Ed448";
            default: return null;
        }
    }
}
