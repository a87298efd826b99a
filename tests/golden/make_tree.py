#!/usr/bin/env python3
"""Writes tests/golden/tree/, the fixture of the golden /metrics test
(tests/check/golden.rs), with Python's `cryptography`.

Ed25519 keys from fixed seeds and fixed serials and dates make every byte
reproducible: running this again rewrites the same files.

    python3 tests/golden/make_tree.py
"""
import base64, datetime, json, pathlib
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

out = pathlib.Path(__file__).parent / "tree"
out.mkdir(exist_ok=True)
utc = datetime.timezone.utc


def key(seed):
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def cert(cn, serial, not_before, not_after, issuer_cn, subject_key, issuer_key, ca):
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
        .public_key(subject_key.public_key())
        .serial_number(serial)
        .not_valid_before(datetime.datetime(*not_before, tzinfo=utc))
        .not_valid_after(datetime.datetime(*not_after, tzinfo=utc))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return b.sign(issuer_key, None)


def pem(c):
    return c.public_bytes(serialization.Encoding.PEM)


ca_key, leaf_key, admin_key = key(1), key(2), key(3)
ca = cert("golden-ca", 0x1001, (2026, 1, 1), (2036, 1, 1), "golden-ca", ca_key, ca_key, True)
leaf = cert("shop.example", 0x2002, (2026, 6, 1), (2027, 1, 15), "golden-ca", leaf_key, ca_key, False)
admin = cert("kubernetes-admin", 0x3003, (2026, 2, 1), (2026, 12, 10), "golden-ca", admin_key, ca_key, False)

(out / "ca.pem").write_bytes(pem(ca))
# A served chain: the leaf, then the same CA again (a repeated label set).
(out / "shop.pem").write_bytes(pem(leaf) + pem(ca))
(out / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


claims = {"iss": "https://issuer.example", "sub": "ci-deployer", "iat": 1795000000, "exp": 1796000000}
jwt = ".".join([b64url(b'{"alg":"none"}'), b64url(json.dumps(claims, separators=(",", ":")).encode()), b64url(b"sig")])
kubeconfig = f"""apiVersion: v1
kind: Config
clusters:
- name: golden
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: {base64.b64encode(pem(ca)).decode()}
users:
- name: admin
  user:
    client-certificate-data: {base64.b64encode(pem(admin)).decode()}
- name: ci
  user:
    token: {jwt}
contexts:
- name: golden
  context: {{cluster: golden, user: admin}}
current-context: golden
"""
(out / "kubeconfig").write_text(kubeconfig)
