#!/usr/bin/env python3
"""Generate a tree of N PEM certificate files, 100 per directory.

    bench/gen_tree.py N DIR

Same shape as benches/scan.rs: one CA key, one leaf key reused, N leaf
certificates signed by the CA with distinct CNs (host-I.example.com) and
not_after = 2027-01-01 + I hours, written as DIR/dNNN/cert-I.crt.
ECDSA P-256 keys, so signing is cheap (10,000 certificates in a few seconds).
"""
import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID


def main():
    n = int(sys.argv[1])
    root = sys.argv[2]
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-ca")])
    leaf_pub = leaf_key.public_key()
    not_before = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    base_after = datetime.datetime(2027, 1, 1, tzinfo=datetime.timezone.utc)
    sha = hashes.SHA256()
    for i in range(n):
        sub = os.path.join(root, "d%03d" % (i // 100))
        if i % 100 == 0:
            os.makedirs(sub, exist_ok=True)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"host-{i}.example.com")]))
            .issuer_name(ca_name)
            .public_key(leaf_pub)
            .serial_number(i + 1)
            .not_valid_before(not_before)
            .not_valid_after(base_after + datetime.timedelta(hours=i))
            .sign(ca_key, sha)
        )
        with open(os.path.join(sub, f"cert-{i}.crt"), "wb") as f:
            f.write(cert.public_bytes(Encoding.PEM))


if __name__ == "__main__":
    main()
