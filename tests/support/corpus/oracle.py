"""The oracle's readers: each takes a file's bytes as written to disk and says
what cryptography, pyjks, jwcrypto or the openssl CLI read in it."""

import base64
import datetime
import json
import math
import subprocess

import jks
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jws

from common import *  # noqa: F401,F403 (the corpus's constants and writers)


def oracle_pem(data):
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        data = data.decode("utf-16").encode()
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return certs_verdict(x509.load_pem_x509_certificates(data), "cryptography load_pem_x509_certificates")


def oracle_der(data):
    return certs_verdict([x509.load_der_x509_certificate(data)], "cryptography load_der_x509_certificate")


def oracle_pkcs7(data):
    if data.lstrip().startswith(b"-----BEGIN"):
        certs = pkcs7.load_pem_pkcs7_certificates(data)
    else:
        certs = pkcs7.load_der_pkcs7_certificates(data)
    return certs_verdict(certs, "cryptography load_*_pkcs7_certificates")


def oracle_pkcs12(data, path):
    for pw in [None, b""] + [p.encode() for p in CONFIGURED]:
        try:
            p = pkcs12.load_pkcs12(data, pw)
        except ValueError:
            continue
        certs = ([p.cert.certificate] if p.cert else []) + [c.certificate for c in p.additional_certs]
        return certs_verdict(certs, "cryptography load_pkcs12")
    # cryptography cannot: ask the openssl CLI with each password
    for pw in [""] + CONFIGURED:
        out = subprocess.run(
            ["openssl", "pkcs12", "-in", path, "-nokeys", "-passin", "pass:" + pw],
            capture_output=True,
        )
        if out.returncode == 0:
            return certs_verdict(x509.load_pem_x509_certificates(out.stdout), "openssl pkcs12 -nokeys")
    # No password verifies the MAC: certificates stored unencrypted
    # (`-certpbe NONE`) are still there to read, unverified, as `openssl
    # pkcs12 -nomacver` shows; lapse must report them and say the MAC failed.
    out = subprocess.run(
        ["openssl", "pkcs12", "-in", path, "-nokeys", "-nomacver", "-passin", "pass:"],
        capture_output=True,
    )
    if out.returncode == 0 and b"-----BEGIN CERTIFICATE-----" in out.stdout:
        certs = x509.load_pem_x509_certificates(out.stdout)
        return certs_verdict(certs, "openssl pkcs12 -nokeys -nomacver", integrity_error=True)
    return unreadable("no configured password (nor NULL, nor \"\") opens it")


def oracle_jks(data):
    store = jks.KeyStore.loads(data, None, try_decrypt_keys=False)
    ders = [e.cert for e in store.certs.values()]
    for e in store.private_keys.values():
        ders += [der for _, der in e.cert_chain]
    certs = [x509.load_der_x509_certificate(d) for d in ders]
    matches = False
    for pw in CONFIGURED:
        try:
            jks.KeyStore.loads(data, pw, try_decrypt_keys=False)
            matches = True
        except jks.util.KeystoreSignatureException:
            pass
    return certs_verdict(certs, "pyjks KeyStore.loads", integrity_error=not matches)


def oracle_key(data):
    loaders = [
        lambda: serialization.load_pem_private_key(data, None),
        lambda: serialization.load_pem_private_key(data, KEY_PASS),
        lambda: serialization.load_der_private_key(data, None),
        lambda: serialization.load_der_private_key(data, KEY_PASS),
        lambda: serialization.load_pem_public_key(data),
        lambda: serialization.load_der_public_key(data),
        lambda: serialization.load_pem_parameters(data),
        lambda: serialization.load_der_parameters(data),
        lambda: x509.load_pem_x509_csr(data),
        lambda: x509.load_der_x509_csr(data),
    ]
    for load in loaders:
        try:
            load()
            return none_verdict("a key, parameters or request (cryptography loads it): no certificate")
        except Exception:
            continue
    raise AssertionError("the oracle cannot read a key the builder wrote")


def numeric_date(claims, name):
    """RFC 7519 NumericDate: a JSON number; None when absent."""
    v = claims.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{name} is not a NumericDate")
    if not math.isfinite(v):
        raise ValueError(f"{name} is not finite")
    try:
        return rfc3339(datetime.datetime.fromtimestamp(math.floor(v), UTC))
    except (OverflowError, ValueError, OSError):
        raise ValueError(f"{name} is out of range")


def token_expiry(text):
    """(expiry or None, flags) of a compact JWS or JWE; raises when unreadable."""
    parts = text.split(".")
    if len(parts) == 5:
        t = jwcrypto_jwe.JWE()
        t.deserialize(text)
        return None, {}
    t = jws.JWS()
    t.deserialize(text)
    claims = json.loads(t.objects["payload"])
    exp = numeric_date(claims, "exp")
    nbf = numeric_date(claims, "nbf")
    numeric_date(claims, "iat")
    # RFC 7519: a verifier accepts a token at t only when nbf <= t < exp, so a
    # token whose nbf is not before its exp is never valid: no expiry to
    # report, the token itself is broken (ISO 8601 text compares as time).
    if nbf is not None and exp is not None and nbf >= exp:
        raise ValueError("its nbf is not before its exp: no instant is valid")
    return exp, {}


def oracle_token(data):
    text = data.decode().strip()
    try:
        exp, flags = token_expiry(text)
    except ValueError as e:
        return unreadable(f"jwcrypto reads the token, but {e}")
    return ("tokens", [exp], "jwcrypto deserialize + RFC 7519 NumericDate", flags)


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)


def oracle_json(data):
    """Tokens and PEM certificates in any string value (Secret data decoded)."""
    doc = json.loads(data)
    values = list(strings_in(doc))
    if doc.get("kind") == "Secret":
        values = [base64.b64decode(v).decode() for v in doc.get("data", {}).values()]
    dates, flags, expect = [], {}, "none"
    for v in values:
        if "-----BEGIN CERTIFICATE-----" in v:
            dates += oracle_pem(v.encode())[1]
            expect = "certs" if expect == "none" else expect
        elif v.count(".") in (2, 4) and v.startswith("eyJ"):
            exp, f = token_expiry(v)
            dates.append(exp)
            flags.update(f)
            expect = "tokens"
    return (expect, dates, "json + cryptography/jwcrypto on every string value", flags)


def oracle_pkcs7_or_none(data):
    try:
        if data.lstrip().startswith(b"-----BEGIN CMS-----"):
            data = data.replace(b"BEGIN CMS", b"BEGIN PKCS7").replace(b"END CMS", b"END PKCS7")
        return oracle_pkcs7(data)
    except ValueError as e:
        if "no certificate data" in str(e):
            return none_verdict("cryptography: a PKCS#7 without certificates")
        raise
