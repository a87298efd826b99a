#!/usr/bin/env python3
"""Generate a benchmark tree of N credential files, 100 per directory.

    bench/gen_tree.py N DIR            # N PEM certificate files
    bench/gen_tree.py --mix N DIR      # N files of mixed kinds (below)

PEM tree: same shape as benches/scan.rs: one CA key, one leaf key reused, N
leaf certificates signed by the CA with distinct CNs (host-I.example.com) and
not_after = 2027-01-01 + I hours, written as DIR/dNNN/cert-I.crt.

Mixed tree: file I is of kind MIX[I % 20] (fixed shares, every directory
holds the same mix); every leaf certificate and token I expires at
2027-01-01 + I hours:

    share  kind                                  file              credentials
    50 %   PEM, one certificate                  cert-I.crt        1
    10 %   PEM bundle: leaf + intermediate       bundle-I.pem      2
    10 %   DER certificate                       cert-I.der        1
    10 %   PKCS#12, empty password, cert + key   store-I.p12       1
    10 %   kubeconfig: certificate-authority-    kube-I.kubeconfig 3
           data + client-certificate-data
           embedded, one user with a JWT token
     5 %   JWT file                              id-I.jwt          1
     5 %   JWT file                              sa-I.token        1

so N files hold 1.3 N credentials. The intermediate (not_after 2031-01-01)
and the kubeconfig CA (not_after 2036-01-01) are one certificate each,
repeated. Keys are ECDSA P-256 derived from fixed scalars; with the fixed
serials and dates, only the ECDSA signatures (random nonce) differ from one
generation to the next. JWTs are HS256-shaped with a fixed fake signature.

Prints the number of credentials written on stdout.
"""
import base64
import datetime
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, pkcs12
from cryptography.x509.oid import NameOID

UTC = datetime.timezone.utc
NOT_BEFORE = datetime.datetime(2026, 1, 1, tzinfo=UTC)
BASE_AFTER = datetime.datetime(2027, 1, 1, tzinfo=UTC)
SHA = hashes.SHA256()

# 20 slots: the shares in the docstring.
MIX = ["pem"] * 10 + ["bundle"] * 2 + ["der"] * 2 + ["p12"] * 2 + ["kubeconfig"] * 2 + ["jwt", "token"]
CREDENTIALS = {"pem": 1, "bundle": 2, "der": 1, "p12": 1, "kubeconfig": 3, "jwt": 1, "token": 1}
FILE_NAME = {
    "pem": "cert-{}.crt",
    "bundle": "bundle-{}.pem",
    "der": "cert-{}.der",
    "p12": "store-{}.p12",
    "kubeconfig": "kube-{}.kubeconfig",
    "jwt": "id-{}.jwt",
    "token": "sa-{}.token",
}


def key(scalar):
    return ec.derive_private_key(scalar, ec.SECP256R1())


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def certificate(subject, issuer, issuer_key, public_key, serial, not_after, ca=False):
    b = (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(name(issuer))
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(not_after)
    )
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return b.sign(issuer_key, SHA)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(sub, exp):
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"iss": "https://issuer.bench.example", "sub": sub, "iat": 1767225600, "exp": exp}
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}.{b64url(bytes(range(32)))}"


def pem_tree(n, root):
    ca_key = key(1001)
    leaf_key = key(1002)
    leaf_pub = leaf_key.public_key()
    for i in range(n):
        sub = os.path.join(root, "d%03d" % (i // 100))
        if i % 100 == 0:
            os.makedirs(sub, exist_ok=True)
        cert = certificate(f"host-{i}.example.com", "bench-ca", ca_key, leaf_pub, i + 1, BASE_AFTER + datetime.timedelta(hours=i))
        with open(os.path.join(sub, f"cert-{i}.crt"), "wb") as f:
            f.write(cert.public_bytes(Encoding.PEM))
    return n


KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster:
    server: https://api.bench.example:6443
    certificate-authority-data: {ca}
contexts:
- name: bench
  context:
    cluster: bench
    user: client-{i}
- name: bench-token
  context:
    cluster: bench
    user: robot-{i}
current-context: bench
users:
- name: client-{i}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
- name: robot-{i}
  user:
    token: {token}
"""


def mixed_tree(n, root):
    root_key = key(2001)
    inter_key = key(2002)
    leaf_key = key(2003)
    leaf_pub = leaf_key.public_key()
    inter = certificate("bench-intermediate", "bench-root", root_key, inter_key.public_key(), 1, datetime.datetime(2031, 1, 1, tzinfo=UTC), ca=True)
    inter_pem = inter.public_bytes(Encoding.PEM)
    kube_ca = certificate("kubernetes", "kubernetes", root_key, root_key.public_key(), 2, datetime.datetime(2036, 1, 1, tzinfo=UTC), ca=True)
    kube_ca_b64 = base64.b64encode(kube_ca.public_bytes(Encoding.PEM)).decode()
    leaf_key_pem = leaf_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    leaf_key_b64 = base64.b64encode(leaf_key_pem).decode()
    total = 0
    for i in range(n):
        sub = os.path.join(root, "d%03d" % (i // 100))
        if i % 100 == 0:
            os.makedirs(sub, exist_ok=True)
        kind = MIX[i % len(MIX)]
        not_after = BASE_AFTER + datetime.timedelta(hours=i)
        exp = int(not_after.timestamp())
        path = os.path.join(sub, FILE_NAME[kind].format(i))
        total += CREDENTIALS[kind]
        if kind in ("jwt", "token"):
            with open(path, "w") as f:
                f.write(jwt(f"system:serviceaccount:bench:sa-{i}", exp) + "\n")
            continue
        cert = certificate(f"host-{i}.example.com", "bench-intermediate", inter_key, leaf_pub, 1000 + i, not_after)
        if kind == "pem":
            data = cert.public_bytes(Encoding.PEM)
        elif kind == "bundle":
            data = cert.public_bytes(Encoding.PEM) + inter_pem
        elif kind == "der":
            data = cert.public_bytes(Encoding.DER)
        elif kind == "p12":
            data = pkcs12.serialize_key_and_certificates(f"host-{i}".encode(), leaf_key, cert, None, NoEncryption())
        else:  # kubeconfig
            data = KUBECONFIG.format(
                i=i,
                ca=kube_ca_b64,
                cert=base64.b64encode(cert.public_bytes(Encoding.PEM)).decode(),
                key=leaf_key_b64,
                token=jwt(f"robot-{i}", exp),
            ).encode()
        with open(path, "wb") as f:
            f.write(data)
    return total


def main():
    args = sys.argv[1:]
    mix = "--mix" in args
    args = [a for a in args if a != "--mix"]
    if len(args) != 2:
        sys.exit(__doc__)
    n, root = int(args[0]), args[1]
    total = mixed_tree(n, root) if mix else pem_tree(n, root)
    print(total)


if __name__ == "__main__":
    main()
