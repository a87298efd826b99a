"""PKCS#12 written by OpenSSL's library and CLI, keystores written by keytool,
keystores and bundles inside Secrets."""

import concurrent.futures
import ctypes
import datetime
import json
import os
import shutil
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from common import *  # noqa: F401,F403 (the corpus's constants and writers)
from material import *  # noqa: F401,F403
from oracle import *  # noqa: F401,F403


# ---- PKCS#12 as OpenSSL's library and CLI write it ---------------------------


def pkcs12_create(password, cert, key, cas, mac_iter):
    """PKCS12_create(pass, …) from the system's libcrypto, as pyOpenSSL's
    PKCS12.export called it (pyOpenSSL 23.3 dropped PKCS12): password None is
    PKCS12_create(NULL, …)."""
    lib = ctypes.CDLL("libcrypto.so.3")
    vp, cp = ctypes.c_void_p, ctypes.c_char_p
    lib.d2i_X509.restype = vp
    lib.d2i_X509.argtypes = [vp, ctypes.POINTER(cp), ctypes.c_long]
    lib.d2i_AutoPrivateKey.restype = vp
    lib.d2i_AutoPrivateKey.argtypes = [vp, ctypes.POINTER(cp), ctypes.c_long]
    lib.OPENSSL_sk_new_null.restype = vp
    lib.OPENSSL_sk_push.argtypes = [vp, vp]
    lib.PKCS12_create.restype = vp
    lib.PKCS12_create.argtypes = [cp, cp, vp, vp, vp] + [ctypes.c_int] * 5
    lib.i2d_PKCS12.argtypes = [vp, ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte))]

    def load(fn, data):
        buf = cp(data)
        return fn(None, ctypes.byref(buf), len(data))

    x = load(lib.d2i_X509, der(cert))
    k = load(lib.d2i_AutoPrivateKey, key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    stack = lib.OPENSSL_sk_new_null()
    for c in cas:
        lib.OPENSSL_sk_push(stack, load(lib.d2i_X509, der(c)))
    p12 = lib.PKCS12_create(None if password is None else password.encode(), b"corpus", k, x, stack,
                            0, 0, 2048, mac_iter, 0)
    assert p12, "PKCS12_create failed"
    out = ctypes.POINTER(ctypes.c_ubyte)()
    n = lib.i2d_PKCS12(p12, ctypes.byref(out))
    return ctypes.string_at(out, n)


PASSWORD_FORMS = {"null": None, "empty": "", "configured": CONFIGURED[1], "configured-utf8": CONFIGURED[2],
                  "wrong": WRONG}


def pkcs12_stores():
    cas = [MID, ROOT]
    for form, pw in PASSWORD_FORMS.items():
        for mac_iter, label in ((1, "maciter1"), (2048, "maciter2048")):
            rel = f"pkcs12/libssl/pkcs12-create-{form}-{label}.p12"
            put(rel, pkcs12_create(pw, LEAF, LEAF_KEY, cas, mac_iter))
            record(rel, f"pkcs12-libssl-{form}", oracle_pkcs12(read(rel), os.path.join(OUT, "corpus", rel)))
    # cryptography's serialize_key_and_certificates, every encryption form
    P = serialization.PrivateFormat
    encryptions = {"noencryption": lambda pw: serialization.NoEncryption()}
    encryptions["bestavailable"] = lambda pw: serialization.BestAvailableEncryption(pw.encode())
    for algo, mac in (("PBESv1SHA1And3KeyTripleDESCBC", hashes.SHA1()), ("PBESv2SHA256AndAES256CBC", hashes.SHA256())):
        encryptions[algo] = (lambda a, m: lambda pw: P.PKCS12.encryption_builder().kdf_rounds(2048)
                             .key_cert_algorithm(getattr(pkcs12.PBES, a)).hmac_hash(m).build(pw.encode()))(algo, mac)
    for ename, make in encryptions.items():
        pws = {"none": None} if ename == "noencryption" else {
            "configured": CONFIGURED[0], "configured-utf8": CONFIGURED[2], "wrong": WRONG}
        for form, pw in pws.items():
            for contents, args in (("key-and-chain", (b"leaf", LEAF_KEY, LEAF, cas)),
                                   ("certs-only", (None, None, None, CHAIN))):
                rel = f"pkcs12/cryptography/{ename}-{form}-{contents}.p12"
                put(rel, pkcs12.serialize_key_and_certificates(*args, make(pw)))
                record(rel, f"pkcs12-cryptography-{ename}-{form}",
                       oracle_pkcs12(read(rel), os.path.join(OUT, "corpus", rel)))
    # the openssl CLI
    tmp = tempfile.mkdtemp()
    leaf_pem, key_pem, ca_pem = (os.path.join(tmp, n) for n in ("leaf.pem", "key.pem", "ca.pem"))
    open(leaf_pem, "wb").write(pem(LEAF))
    open(ca_pem, "wb").write(pem(MID) + pem(ROOT))
    open(key_pem, "wb").write(LEAF_KEY.private_bytes(
        serialization.Encoding.PEM, P.PKCS8, serialization.NoEncryption()))
    variants = {"default": [], "legacy": ["-legacy"], "nomac": ["-nomac"],
                "nopbe": ["-keypbe", "NONE", "-certpbe", "NONE"], "nokeys": ["-nokeys"]}
    jobs = []
    for vname, extra in variants.items():
        for form, pw in (("empty", ""), ("configured", CONFIGURED[0]), ("wrong", WRONG)):
            rel = f"pkcs12/openssl/{vname}-{form}.pfx"
            cmd = ["openssl", "pkcs12", "-export", "-in", leaf_pem, "-certfile", ca_pem,
                   "-passout", "pass:" + pw, "-out", os.path.join(OUT, "corpus", rel)] + extra
            if vname != "nokeys":
                cmd += ["-inkey", key_pem]
            jobs.append((rel, f"pkcs12-openssl-{vname}-{form}", cmd))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda j: (os.makedirs(os.path.dirname(os.path.join(OUT, "corpus", j[0])), exist_ok=True),
                                 run(j[2])), jobs))
    for rel, klass, _ in jobs:
        record(rel, klass, oracle_pkcs12(read(rel), os.path.join(OUT, "corpus", rel)))
    shutil.rmtree(tmp)


# ---- keystores the JDK's keytool writes (28 JVM starts) --------------------


def keytool_stores():
    tmp = tempfile.mkdtemp()
    src = os.path.join(tmp, "src.p12")
    open(src, "wb").write(pkcs12.serialize_key_and_certificates(
        b"leaf", LEAF_KEY, LEAF, [MID, ROOT], serialization.BestAvailableEncryption(CONFIGURED[1].encode())))
    cas = sorted(os.listdir(MOZILLA))[:3]
    ca_files = [os.path.join(MOZILLA, n) for n in cas]
    root = os.path.join(OUT, "corpus", "keytool")
    for sub in ("jks", "jceks", "pkcs12"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)

    def at(rel):
        return os.path.join(root, rel)

    def importks(rel, stype, pw, props=()):
        return [*KEYTOOL, *props, "-importkeystore", "-noprompt", "-srckeystore", src, "-srcstoretype", "PKCS12",
                "-srcstorepass", CONFIGURED[1], "-destkeystore", at(rel), "-deststoretype", stype,
                "-deststorepass", pw, "-destkeypass", pw]

    def importcert(rel, stype, pw, alias, f):
        return [*KEYTOOL, "-importcert", "-noprompt", "-keystore", at(rel), "-storetype", stype,
                "-storepass", pw, "-alias", alias, "-file", f]

    def genkeypair(rel, stype, pw, alg, alias="self"):
        return [*KEYTOOL, "-genkeypair", "-keystore", at(rel), "-storetype", stype, "-storepass", pw,
                "-keypass", pw, "-alias", alias, "-keyalg", alg, "-dname", f"CN=keytool-{alias}",
                "-startdate", "2026/01/02 03:04:05", "-validity", "400"]

    def genseckey(rel, stype, pw):
        return [*KEYTOOL, "-genseckey", "-keystore", at(rel), "-storetype", stype, "-storepass", pw,
                "-keypass", pw, "-alias", "aes", "-keyalg", "AES", "-keysize", "256"]

    def truststore(rel, stype, pw):
        return [importcert(rel, stype, pw, f"ca{i}", f) for i, f in enumerate(ca_files)]

    p = "-J-Dkeystore.pkcs12."
    jobs = {
        "jks/key-chain.jks": [importks("jks/key-chain.jks", "JKS", CONFIGURED[0])],
        "jceks/key-chain.jceks": [importks("jceks/key-chain.jceks", "JCEKS", CONFIGURED[0])],
        "pkcs12/key-chain.p12": [importks("pkcs12/key-chain.p12", "PKCS12", CONFIGURED[1])],
        "jks/key-chain-wrong.jks": [importks("jks/key-chain-wrong.jks", "JKS", WRONG)],
        "pkcs12/key-chain-wrong.p12": [importks("pkcs12/key-chain-wrong.p12", "PKCS12", WRONG)],
        "pkcs12/hmacsha1-aes256.p12": [importks("pkcs12/hmacsha1-aes256.p12", "PKCS12", CONFIGURED[0], (
            p + "certProtectionAlgorithm=PBEWithHmacSHA1AndAES_256",
            p + "keyProtectionAlgorithm=PBEWithHmacSHA1AndAES_256", p + "macAlgorithm=HmacPBESHA1"))],
        "pkcs12/certprotection-none.p12": [importks("pkcs12/certprotection-none.p12", "PKCS12", CONFIGURED[0],
                                                    (p + "certProtectionAlgorithm=NONE",))],
        "pkcs12/legacy.p12": [importks("pkcs12/legacy.p12", "PKCS12", CONFIGURED[0], (p + "legacy",))],
        "pkcs12/mac-sha256.p12": [importks("pkcs12/mac-sha256.p12", "PKCS12", CONFIGURED[0],
                                           (p + "macAlgorithm=HmacPBESHA256",))],
        "jks/genkeypair-rsa.jks": [genkeypair("jks/genkeypair-rsa.jks", "JKS", CONFIGURED[0], "RSA")],
        "jceks/genkeypair-ec.jceks": [genkeypair("jceks/genkeypair-ec.jceks", "JCEKS", CONFIGURED[0], "EC")],
        "pkcs12/genkeypair-ec.p12": [genkeypair("pkcs12/genkeypair-ec.p12", "PKCS12", CONFIGURED[1], "EC")],
        "jks/truststore.jks": truststore("jks/truststore.jks", "JKS", CONFIGURED[0]) + [
            [*KEYTOOL, "-importkeystore", "-noprompt", "-srckeystore", at("jks/truststore.jks"), "-srcstoretype",
             "JKS", "-srcstorepass", CONFIGURED[0], "-destkeystore", at("jceks/truststore.jceks"),
             "-deststoretype", "JCEKS", "-deststorepass", CONFIGURED[0]]],
        "pkcs12/truststore.p12": truststore("pkcs12/truststore.p12", "PKCS12", CONFIGURED[1]),
        "jks/truststore-wrong.jks": truststore("jks/truststore-wrong.jks", "JKS", WRONG)[:2],
        "jceks/secret-and-certs.jceks": [genseckey("jceks/secret-and-certs.jceks", "JCEKS", CONFIGURED[0])]
        + truststore("jceks/secret-and-certs.jceks", "JCEKS", CONFIGURED[0])[:2]
        + [genkeypair("jceks/secret-and-certs.jceks", "JCEKS", CONFIGURED[0], "RSA", "pair")],
        "pkcs12/secret-and-certs.p12": [genseckey("pkcs12/secret-and-certs.p12", "PKCS12", CONFIGURED[0])]
        + truststore("pkcs12/secret-and-certs.p12", "PKCS12", CONFIGURED[0])[:1],
        "jceks/secret-only.jceks": [genseckey("jceks/secret-only.jceks", "JCEKS", CONFIGURED[0])],
    }

    def run_all(cmds):
        for cmd in cmds:
            run(cmd)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(run_all, jobs.values()))
    shutil.rmtree(tmp)
    for rel in sorted(list(jobs) + ["jceks/truststore.jceks"]):
        data = read("keytool/" + rel)
        kind = rel.split("/")[0]
        verdict = oracle_pkcs12(data, at(rel)) if kind == "pkcs12" else oracle_jks(data)
        stem = rel.split("/")[1].rsplit(".", 1)[0]
        record("keytool/" + rel, f"keytool-{kind}-{stem}", verdict)


# ---- keystores and bundles inside Secrets, and files with nothing in them ---


def secrets_and_nothing():
    jks_bytes = read("keytool/jks/truststore.jks")
    for rel, obj, klass, oracle in (
        ("secrets/kafka-truststore.json", secret("kafka-truststore", {"truststore.jks": jks_bytes}),
         "jks-in-secret", lambda: oracle_jks(jks_bytes)),
        ("secrets/tls.json", secret("web-tls", {"tls.crt": chain_pem(), "tls.key": LEAF_KEY.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())},
            "kubernetes.io/tls"), "secret-tls", lambda: oracle_pem(chain_pem())),
        ("secrets/p7b.json", secret("ca-bundle", {"ca.p7b": read("pkcs7/chain-openssl-der.p7b")}),
         "pkcs7-in-secret", lambda: oracle_pkcs7(read("pkcs7/chain-openssl-der.p7b"))),
    ):
        put(rel, json.dumps(obj, indent=2))
        record(rel, klass, oracle())
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ROOT.subject)
           .last_update(datetime.datetime(2026, 1, 1, tzinfo=UTC))
           .next_update(datetime.datetime(2026, 2, 1, tzinfo=UTC)).sign(ROOT_KEY, hashes.SHA256()))
    nothing = {
        "misc/crl.pem": crl.public_bytes(serialization.Encoding.PEM),
        "misc/crl.der": crl.public_bytes(serialization.Encoding.DER),
        "misc/empty.pem": b"",
        "misc/os-release": open("/etc/os-release", "rb").read(),
        "misc/app-config.json": b'{"listen": ":8080", "log_level": "info", "replicas": 3}\n',
        "misc/values.yaml": b"replicaCount: 2\nimage:\n  repository: nginx\n  tag: stable\n",
        "misc/notes.txt": b"This directory holds the build's notes, no certificates.\n",
    }
    for rel, data in nothing.items():
        put(rel, data)
        record(rel, "nothing", none_verdict("no certificate, key or token in it"))
