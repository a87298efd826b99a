"""What every part of the corpus shares: the configured passwords, where files
go, the record of what the oracle read in each."""

import base64
import concurrent.futures
import ctypes
import datetime
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import jks
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dh, dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk, jws


UTC = datetime.timezone.utc
# cryptography warns about a few CA certificates (a serial of 0) and BER in PKCS#7
warnings.simplefilter("ignore")
# Passwords lapse.yaml lists; WRONG is never configured.
CONFIGURED = ["changeit", "s3cret-pass", "Zürich-Paßwort"]
WRONG = "not-configured-7"
KEY_PASS = b"key-only-pass"
MOZILLA = "/usr/share/ca-certificates/mozilla"
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
JAVA_CACERTS = "/etc/ssl/certs/java/cacerts"
# A JVM start each: the client compiler only and the serial collector start fastest.
KEYTOOL = ["keytool", "-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC"]

OUT = sys.argv[1]
ORACLE = {}
SECRETS = set(CONFIGURED) | {WRONG, KEY_PASS.decode()}


def rfc3339(dt):
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def put(rel, data):
    path = os.path.join(OUT, "corpus", rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return path


def read(rel):
    with open(os.path.join(OUT, "corpus", rel), "rb") as f:
        return f.read()


def record(rel, klass, verdict):
    """verdict: (expect, not_after list, why, flags)."""
    expect, dates, why, flags = verdict
    ORACLE["corpus/" + rel] = {
        "class": klass,
        "expect": expect,
        "not_after": sorted(dates, key=lambda d: (d is not None, d or "")),
        "why": why,
        "integrity_error": flags.get("integrity_error", False),
        "may_error": flags.get("may_error", False),
    }


def certs_verdict(certs, why, **flags):
    return ("certs", [cert_not_after(c) for c in certs], why, flags)


def none_verdict(why):
    return ("none", [], why, {})


def unreadable(why):
    return ("unreadable", [], why, {})


def cert_not_after(cert):
    """RFC 5280 4.1.2.5: 99991231235959Z means no well-defined expiration."""
    after = cert.not_valid_after_utc
    if after == datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC):
        return None
    return rfc3339(after)


def run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, **kw)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {out.stderr.decode(errors='replace')[-800:]}")
    return out.stdout
