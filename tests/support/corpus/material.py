"""Certificates, keys and wrappers the corpus builds files from."""

import base64
import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from common import *  # noqa: F401,F403 (the corpus's constants and writers)


NOW = datetime.datetime.now(UTC).replace(microsecond=0)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(cn, key, issuer_cert=None, issuer_key=None, not_before=None, not_after=None, ca=False, subject=None):
    b = (
        x509.CertificateBuilder()
        .subject_name(subject or name(cn))
        .issuer_name(issuer_cert.subject if issuer_cert else (subject or name(cn)))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or datetime.datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(not_after or datetime.datetime(2027, 1, 1, tzinfo=UTC))
    )
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    signer = issuer_key or key
    algo = None if isinstance(signer, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)) else hashes.SHA256()
    return b.sign(signer, algo)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


RSA = rsa.generate_private_key(65537, 2048)
ROOT_KEY = ec.generate_private_key(ec.SECP256R1())
ROOT = make_cert("Corpus Root", ROOT_KEY, ca=True, not_after=datetime.datetime(2035, 3, 4, 5, 6, 7, tzinfo=UTC))
MID_KEY = ec.generate_private_key(ec.SECP256R1())
MID = make_cert("Corpus Intermediate", MID_KEY, ROOT, ROOT_KEY, ca=True,
                not_after=datetime.datetime(2030, 7, 8, 9, 10, 11, tzinfo=UTC))
LEAF_KEY = RSA
LEAF = make_cert("corpus-leaf.example", LEAF_KEY, MID, MID_KEY, not_after=datetime.datetime(2026, 9, 1, 12, 0, 0, tzinfo=UTC))
CHAIN = [LEAF, MID, ROOT]


def chain_pem():
    return b"".join(pem(c) for c in CHAIN)


def key_pem_fragment(text):
    return text.decode().splitlines()[1]


def mozilla_certs():
    return [x509.load_pem_x509_certificate(open(os.path.join(MOZILLA, n), "rb").read())
            for n in sorted(os.listdir(MOZILLA))]


def secret(n, data, type_="Opaque"):
    return {"apiVersion": "v1", "kind": "Secret", "type": type_,
            "metadata": {"name": n, "namespace": "corpus"},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
