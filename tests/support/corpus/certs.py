"""Debian's CA certificates, certificates with edge dates, keys of every type,
PKCS#7 bundles."""

import datetime
import os
import shutil
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, dsa, ec, ed448, ed25519, x448, x25519
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from common import *  # noqa: F401,F403 (the corpus's constants and writers)
from material import *  # noqa: F401,F403
from oracle import *  # noqa: F401,F403


# ---- Debian's CA certificates -----------------------------------------------


def ca_certificates():
    names = sorted(os.listdir(MOZILLA))
    for n in names:
        data = open(os.path.join(MOZILLA, n), "rb").read()
        stem = n[: -len(".crt")]
        rel = f"ca/pem/{n}"
        put(rel, data)
        record(rel, "ca-single-pem", oracle_pem(read(rel)))
        cert = x509.load_pem_x509_certificate(data)
        rel = f"ca/der/{stem}.der"
        put(rel, der(cert))
        record(rel, "ca-single-der", oracle_der(read(rel)))
        rel = f"ca/der-unnamed/{stem}"
        put(rel, der(cert))
        record(rel, "ca-single-der-unnamed", oracle_der(read(rel)))
        rel = f"ca/pkcs7/{stem}.p7c"
        put(rel, pkcs7.serialize_certificates([cert], serialization.Encoding.DER))
        record(rel, "pkcs7-single-ca-der", oracle_pkcs7(read(rel)))
    bundle = open(BUNDLE, "rb").read()
    put("ca/bundle/ca-certificates.crt", bundle)
    record("ca/bundle/ca-certificates.crt", "ca-bundle", oracle_pem(read("ca/bundle/ca-certificates.crt")))
    put("ca/bundle/ca-certificates-crlf.pem", bundle.replace(b"\n", b"\r\n"))
    record("ca/bundle/ca-certificates-crlf.pem", "ca-bundle", oracle_pem(read("ca/bundle/ca-certificates-crlf.pem")))
    put("ca/bundle/ca-certificates-cr.pem", bundle.replace(b"\n", b"\r"))
    record("ca/bundle/ca-certificates-cr.pem", "pem-cr-only", oracle_pem(read("ca/bundle/ca-certificates-cr.pem")))
    for enc, bom in (("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")):
        rel = f"ca/bundle/ca-certificates-{enc}.pem"
        put(rel, bom + bundle.decode().encode(enc))
        record(rel, "pem-utf16", oracle_pem(read(rel)))
    for form in ("PEM", "DER"):
        rel = f"ca/bundle/ca-certificates.{form.lower()}.p7b"
        run(["openssl", "crl2pkcs7", "-nocrl", "-certfile", BUNDLE, "-outform", form,
             "-out", os.path.join(OUT, "corpus", rel)])
        record(rel, f"pkcs7-openssl-{form.lower()}", oracle_pkcs7(read(rel)))
    put("ca/java/cacerts", open(JAVA_CACERTS, "rb").read())
    record("ca/java/cacerts", "jks-debian-cacerts", oracle_jks(read("ca/java/cacerts")))


# ---- certificates lapse makes no special case of ----------------------------


def certificates():
    edges = {
        "utctime-1950": datetime.datetime(1950, 1, 1, 0, 0, 0, tzinfo=UTC),
        "utctime-2049": datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC),
        "generalized-2050": datetime.datetime(2050, 1, 1, 0, 0, 0, tzinfo=UTC),
        "y2038": datetime.datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),
        "leap-day": datetime.datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC),
        "no-well-defined-expiry": datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        "expired-2001": datetime.datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC),
    }
    keys = {
        "rsa": RSA,
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "p521": ec.generate_private_key(ec.SECP521R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "ed448": ed448.Ed448PrivateKey.generate(),
    }
    for kname, key in keys.items():
        for ename, when in edges.items():
            nb = max(datetime.datetime(1950, 1, 1, tzinfo=UTC),
                     min(datetime.datetime(2000, 1, 1, tzinfo=UTC), when - datetime.timedelta(days=1)))
            cert = make_cert(f"{ename}.{kname}.example", key, not_before=nb, not_after=when)
            for ext, data, oracle, klass in (
                ("crt", pem(cert), oracle_pem, "cert-pem"),
                ("der", der(cert), oracle_der, "cert-der"),
            ):
                rel = f"certs/{kname}/{ename}.{ext}"
                put(rel, data)
                k = "cert-no-well-defined-expiry" if ename == "no-well-defined-expiry" else klass
                record(rel, k, oracle(read(rel)))
    # names in the string types RFC 5280 allows, decoded by what the type says
    for tag, value in (
        (x509.name._ASN1Type.BMPString, "Zertifikat für Ölmühle"),
        (x509.name._ASN1Type.UniversalString, "Сертификат"),
        (x509.name._ASN1Type.T61String, "teletex"),
    ):
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value, _type=tag)])
        cert = make_cert(None, keys["p256"], subject=subject)
        rel = f"certs/names/{tag.name}.pem"
        put(rel, pem(cert))
        record(rel, "cert-name-string-types", oracle_pem(read(rel)))
    put("certs/chain/chain.pem", chain_pem())
    record("certs/chain/chain.pem", "cert-pem", oracle_pem(read("certs/chain/chain.pem")))
    key_and_chain = LEAF_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ) + chain_pem()
    put("certs/chain/key-and-chain.pem", key_and_chain)
    SECRETS.add(key_pem_fragment(key_and_chain))
    record("certs/chain/key-and-chain.pem", "cert-pem", oracle_pem(read("certs/chain/key-and-chain.pem")))


# ---- keys of every type: recognised, no credential -------------------------


def keys():
    P = serialization.PrivateFormat
    E = serialization.Encoding
    Pub = serialization.PublicFormat
    none = serialization.NoEncryption()
    enc = serialization.BestAvailableEncryption(KEY_PASS)
    dsa_key = dsa.generate_private_key(2048)
    kinds = {
        "rsa": (RSA, [P.TraditionalOpenSSL, P.PKCS8], [Pub.PKCS1, Pub.SubjectPublicKeyInfo]),
        "ec-p256": (ec.generate_private_key(ec.SECP256R1()), [P.TraditionalOpenSSL, P.PKCS8], [Pub.SubjectPublicKeyInfo]),
        "ec-p384": (ec.generate_private_key(ec.SECP384R1()), [P.TraditionalOpenSSL, P.PKCS8], [Pub.SubjectPublicKeyInfo]),
        "ec-p521": (ec.generate_private_key(ec.SECP521R1()), [P.TraditionalOpenSSL, P.PKCS8], [Pub.SubjectPublicKeyInfo]),
        "ed25519": (ed25519.Ed25519PrivateKey.generate(), [P.PKCS8], [Pub.SubjectPublicKeyInfo]),
        "ed448": (ed448.Ed448PrivateKey.generate(), [P.PKCS8], [Pub.SubjectPublicKeyInfo]),
        "x25519": (x25519.X25519PrivateKey.generate(), [P.PKCS8], [Pub.SubjectPublicKeyInfo]),
        "x448": (x448.X448PrivateKey.generate(), [P.PKCS8], [Pub.SubjectPublicKeyInfo]),
        "dsa": (dsa_key, [P.TraditionalOpenSSL, P.PKCS8], [Pub.SubjectPublicKeyInfo]),
    }
    forms = []
    for kname, (key, privs, pubs) in kinds.items():
        for fmt in privs:
            label = "sec1" if fmt == P.TraditionalOpenSSL and kname.startswith("ec") else (
                "pkcs1" if fmt == P.TraditionalOpenSSL and kname == "rsa" else
                "traditional" if fmt == P.TraditionalOpenSSL else "pkcs8")
            for e in (E.PEM, E.DER):
                forms.append((f"{kname}-{label}", e, key.private_bytes(e, fmt, none)))
            if fmt == P.PKCS8:
                for e in (E.PEM, E.DER):
                    forms.append((f"{kname}-pkcs8-encrypted", e, key.private_bytes(e, fmt, enc)))
        for fmt in pubs:
            label = "public-pkcs1" if fmt == Pub.PKCS1 else "spki"
            for e in (E.PEM, E.DER):
                forms.append((f"{kname}-{label}", e, key.public_key().public_bytes(e, fmt)))
    forms.append(("rsa-pkcs1-encrypted", E.PEM, RSA.private_bytes(E.PEM, P.TraditionalOpenSSL, enc)))
    # RFC 7919's ffdhe2048 group, as `openssl dhparam` and genpkey -genparam write DH parameters
    ffdhe2048 = int(
        "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695A9E13641146433FBCC939DCE249B3EF9"
        "7D2FE363630C75D8F681B202AEC4617AD3DF1ED5D5FD65612433F51F5F066ED0856365553DED1AF3B557135E7F57C935"
        "984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A797ABC0AB182B324FB61D108A94BB2C8E3FB"
        "B96ADAB760D7F4681D4F42A3DE394DF4AE56EDE76372BB190B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F61"
        "9172FE9CE98583FF8E4F1232EEF28183C3FE3B1B4C6FAD733BB5FCBC2EC22005C58EF1837D1683B2C6F34A26C1B2EFFA"
        "886B423861285C97FFFFFFFFFFFFFFFF", 16)
    params = dh.DHParameterNumbers(ffdhe2048, 2).parameters()
    for e in (E.PEM, E.DER):
        forms.append(("dh-params", e, params.parameter_bytes(e, serialization.ParameterFormat.PKCS3)))
    dh_key = params.generate_private_key()
    for e in (E.PEM, E.DER):
        forms.append(("dh-pkcs8", e, dh_key.private_bytes(e, P.PKCS8, none)))
    csr = x509.CertificateSigningRequestBuilder().subject_name(name("csr.example")).sign(RSA, hashes.SHA256())
    for e in (E.PEM, E.DER):
        forms.append(("csr", e, csr.public_bytes(e)))
    for label, e, data in forms:
        if e == E.PEM:
            names = [f"{label}.pem", f"{label}.key"]
        else:
            names = [f"{label}.der", f"{label}.key", label]
        for n in names:
            sub = "pem" if e == E.PEM else "der"
            rel = f"keys/{sub}/{n}"
            put(rel, data)
            record(rel, f"key-{sub}", oracle_key(read(rel)))
        if e == E.PEM and b"PRIVATE KEY" in data and b"ENCRYPTED" not in data:
            SECRETS.add(key_pem_fragment(data))


# ---- PKCS#7 / CMS bundles ---------------------------------------------------

def pkcs7_bundles():
    tmp = tempfile.mkdtemp()
    chain = os.path.join(tmp, "chain.pem")
    open(chain, "wb").write(chain_pem())
    key = os.path.join(tmp, "key.pem")
    open(key, "wb").write(LEAF_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    leaf = os.path.join(tmp, "leaf.pem")
    open(leaf, "wb").write(pem(LEAF))
    cas = os.path.join(tmp, "cas.pem")
    open(cas, "wb").write(pem(MID) + pem(ROOT))
    msg = os.path.join(tmp, "msg.txt")
    open(msg, "w").write("hello\n")
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ROOT.subject)
           .last_update(datetime.datetime(2026, 1, 1, tzinfo=UTC))
           .next_update(datetime.datetime(2026, 2, 1, tzinfo=UTC)).sign(ROOT_KEY, hashes.SHA256()))
    crl_file = os.path.join(tmp, "crl.pem")
    open(crl_file, "wb").write(crl.public_bytes(serialization.Encoding.PEM))
    c = os.path.join(OUT, "corpus", "pkcs7")
    os.makedirs(c, exist_ok=True)
    made = {
        "chain-openssl.p7b": ["openssl", "crl2pkcs7", "-nocrl", "-certfile", chain, "-out"],
        "chain-openssl-der.p7b": ["openssl", "crl2pkcs7", "-nocrl", "-certfile", chain, "-outform", "DER", "-out"],
        "chain-openssl.pem": ["openssl", "crl2pkcs7", "-nocrl", "-certfile", chain, "-out"],
        "chain-openssl-der": ["openssl", "crl2pkcs7", "-nocrl", "-certfile", chain, "-outform", "DER", "-out"],
        "chain-with-crl.p7b": ["openssl", "crl2pkcs7", "-in", crl_file, "-certfile", chain, "-out"],
        "crl-only.p7b": ["openssl", "crl2pkcs7", "-in", crl_file, "-out"],
        "empty.p7b": ["openssl", "crl2pkcs7", "-nocrl", "-out"],
        "signed-cms.pem": ["openssl", "cms", "-sign", "-in", msg, "-signer", leaf, "-inkey", key, "-certfile",
                           cas, "-nodetach", "-outform", "PEM", "-out"],
        "signed-cms.p7m": ["openssl", "cms", "-sign", "-in", msg, "-signer", leaf, "-inkey", key, "-certfile",
                           cas, "-nodetach", "-outform", "DER", "-out"],
    }
    for n, cmd in made.items():
        run(cmd + [os.path.join(c, n)])
    for n in made:
        record("pkcs7/" + n, "pkcs7-openssl", oracle_pkcs7_or_none(read("pkcs7/" + n)))
    for enc, ext in ((serialization.Encoding.PEM, "pem.p7c"), (serialization.Encoding.DER, "p7c")):
        for label, certs in (("chain", CHAIN), ("mozilla-10", mozilla_certs()[:10])):
            rel = f"pkcs7/{label}-cryptography.{ext}"
            put(rel, pkcs7.serialize_certificates(certs, enc))
            record(rel, "pkcs7-cryptography", oracle_pkcs7_or_none(read(rel)))
    shutil.rmtree(tmp)
