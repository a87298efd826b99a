#!/usr/bin/env python3
"""What operators write today: walk a tree, print each credential's expiry.

    bench/py_expiry.py DIR

Uses the `cryptography` package for certificates and PyYAML for
kubeconfigs. Each file is handled by its name, as such a script would:
PEM files (every certificate in a bundle), DER, PKCS#12 (empty password),
kubeconfigs (certificate-authority-data, client-certificate-data and JWT
tokens), and JWT files (base64url payload, `exp`). Prints one line per
credential: path, field, expiry; unreadable files print an error line.
The number of credentials goes to stderr as `credentials: K`.
"""
import base64
import datetime
import json
import os
import sys

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

PEM_EXT = (".crt", ".pem", ".cer", ".cert")
JWT_EXT = (".jwt", ".token")


def jwt_expiry(token):
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    exp = claims.get("exp")
    if exp is None:
        return "never"
    return datetime.datetime.fromtimestamp(exp, datetime.timezone.utc).isoformat()


def kubeconfig(data, emit):
    doc = yaml.safe_load(data)
    for cluster in doc.get("clusters") or []:
        ca = (cluster.get("cluster") or {}).get("certificate-authority-data")
        if ca:
            for cert in x509.load_pem_x509_certificates(base64.b64decode(ca)):
                emit(f"clusters[{cluster['name']}]", cert.not_valid_after_utc.isoformat())
    for user in doc.get("users") or []:
        u = user.get("user") or {}
        if u.get("client-certificate-data"):
            for cert in x509.load_pem_x509_certificates(base64.b64decode(u["client-certificate-data"])):
                emit(f"users[{user['name']}]", cert.not_valid_after_utc.isoformat())
        if u.get("token"):
            emit(f"users[{user['name']}].token", jwt_expiry(u["token"]))


def main():
    out = []
    count = 0
    for dirpath, _dirs, files in os.walk(sys.argv[1]):
        for name in files:
            path = os.path.join(dirpath, name)

            def emit(field, expiry):
                nonlocal count
                count += 1
                out.append(f"{path}\t{field}\t{expiry}\n")

            try:
                with open(path, "rb") as f:
                    data = f.read()
                if name.endswith(PEM_EXT):
                    for cert in x509.load_pem_x509_certificates(data):
                        emit("", cert.not_valid_after_utc.isoformat())
                elif name.endswith(".der"):
                    emit("", x509.load_der_x509_certificate(data).not_valid_after_utc.isoformat())
                elif name.endswith((".p12", ".pfx")):
                    store = pkcs12.load_pkcs12(data, None)
                    certs = ([store.cert] if store.cert else []) + list(store.additional_certs)
                    for c in certs:
                        emit("", c.certificate.not_valid_after_utc.isoformat())
                elif name.endswith(JWT_EXT) or name == "token":
                    emit("", jwt_expiry(data.decode().strip()))
                elif name.endswith(".kubeconfig") or name == "config":
                    kubeconfig(data, emit)
            except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, yaml.YAMLError) as e:
                out.append(f"{path}\terror: {e}\n")
    sys.stdout.writelines(out)
    print(f"credentials: {count}", file=sys.stderr)


if __name__ == "__main__":
    main()
