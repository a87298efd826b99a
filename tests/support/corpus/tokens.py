"""JWS and JWE: the RFC 7515/7516/7520 vectors jwcrypto ships, jwcrypto's own
with edge claims, tokens inside JSON values and Secrets."""

import base64
import json
import os

from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk, jws

from common import *  # noqa: F401,F403 (the corpus's constants and writers)
from material import *  # noqa: F401,F403
from oracle import *  # noqa: F401,F403


def jwcrypto_vectors():
    """jwcrypto ships the RFC vectors in its test modules."""
    import importlib.util
    import jwcrypto

    d = os.path.dirname(jwcrypto.__file__)
    mods = []
    for f in ("tests.py", "tests-cookbook.py"):
        spec = importlib.util.spec_from_file_location("vectors_" + f[:5].replace("-", "_"), os.path.join(d, f))
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        mods.append(m)
    return mods


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def empty_key(text):
    """alg dir and ECDH-ES leave the encrypted-key segment empty (h..iv.ct.tag)."""
    return "-empty-key" if text.split(".")[1] == "" else ""


def token_file(rel, text, klass):
    put(rel, text + "\n")
    SECRETS.add(text)
    record(rel, klass, oracle_token(read(rel)))


def tokens():
    tests, cookbook = jwcrypto_vectors()
    for n in ("A1", "A2", "A3", "A5"):
        ex = getattr(tests, n + "_example")
        text = ".".join([b64u(ex["protected"].encode()), b64u(ex["payload"]), b64u(ex["signature"])])
        token_file(f"tokens/rfc7515/{n}.jwt", text, "jws-rfc7515")
    for n in ("E_A1_vector", "E_A2_vector", "E_A3_vector"):
        token_file(f"tokens/rfc7516/{n}.token", getattr(tests, n), "jwe-rfc7516")
    for n in sorted(k for k in dir(cookbook) if k.startswith("JWE_compact_")):
        text = getattr(cookbook, n)
        token_file(f"tokens/rfc7520/{n}.token", text, "jwe-rfc7520" + empty_key(text))
    keys = {
        "RS256": jwk.JWK.generate(kty="RSA", size=2048),
        "ES256": jwk.JWK.generate(kty="EC", crv="P-256"),
        "EdDSA": jwk.JWK.generate(kty="OKP", crv="Ed25519"),
        "HS256": jwk.JWK.generate(kty="oct", size=256),
    }
    edges = {
        "exp-0": '{"exp":0}', "exp-1": '{"exp":1}', "exp-minus-1": '{"exp":-1}',
        "exp-2147483647": '{"exp":2147483647}', "exp-2147483648": '{"exp":2147483648}',
        "exp-253402300799": '{"exp":253402300799}', "exp-fraction": '{"exp":1700000000.5,"iat":1699990000}',
        "exp-exponent": '{"exp":1e10}', "exp-null": '{"exp":null,"sub":"x"}',
        "iat-only": '{"iat":1700000000,"sub":"svc"}', "nbf-after-exp": '{"nbf":1800000000,"exp":1700000000}',
        "nbf-iat-exp": '{"iat":1700000000,"nbf":1700000000,"exp":1700003600,"iss":"https://issuer"}',
        "exp-string": '{"exp":"1700000000"}', "exp-bool": '{"exp":true}', "exp-1e400": '{"exp":1e400}',
        "exp-minus-1e400": '{"exp":-1e400}', "exp-1e300": '{"exp":1e300}', "exp-year-10000": '{"exp":253402300800}',
        "bound-sa": '{"aud":["https://kubernetes.default.svc"],"exp":1780000000,"iat":1748464000,'
                    '"kubernetes.io":{"namespace":"default","warnafter":1748467607}}',
    }
    for alg, key in keys.items():
        for ename, claims in edges.items():
            s = jws.JWS(claims.encode())
            s.add_signature(key, alg=alg, protected=json.dumps({"alg": alg, "typ": "JWT"}))
            token_file(f"tokens/jws/{alg}/{ename}.jwt", s.serialize(compact=True), "jws-edges")
    jwes = []
    claims = json.dumps({"exp": 1780000000, "sub": "session"}).encode()
    for alg, enc, key in (
        ("dir", "A256GCM", jwk.JWK.generate(kty="oct", size=256)),
        ("dir", "A128CBC-HS256", jwk.JWK.generate(kty="oct", size=256)),
        ("RSA-OAEP-256", "A256GCM", keys["RS256"]),
        ("A128KW", "A128GCM", jwk.JWK.generate(kty="oct", size=128)),
        ("ECDH-ES", "A256GCM", keys["ES256"]),
    ):
        t = jwcrypto_jwe.JWE(claims, json.dumps({"alg": alg, "enc": enc}))
        t.add_recipient(key)
        text = t.serialize(compact=True)
        jwes.append((alg, enc, text))
        klass = "jwe" + empty_key(text)
        token_file(f"tokens/jwe/{alg}-{enc}.token", text, klass)
    # tokens inside JSON values and Opaque Secrets
    for alg, enc, text in jwes:
        rel = f"tokens/json/session-{alg}-{enc}.json"
        put(rel, json.dumps({"session": {"cookie": text, "user": "alice"}}, indent=2))
        record(rel, "jwe-in-json" + empty_key(text), oracle_json(read(rel)))
        rel = f"tokens/secret/session-{alg}-{enc}.json"
        put(rel, json.dumps(secret("session-" + alg.lower(), {"token": text.encode()}), indent=2))
        record(rel, "jwe-in-secret" + empty_key(text), oracle_json(read(rel)))
    for ename in ("exp-2147483648", "nbf-iat-exp", "bound-sa"):
        s = jws.JWS(edges[ename].encode())
        s.add_signature(keys["RS256"], alg="RS256", protected=json.dumps({"alg": "RS256"}))
        text = s.serialize(compact=True)
        SECRETS.add(text)
        rel = f"tokens/json/vault-{ename}.json"
        put(rel, json.dumps({"auth": {"client_token": text, "lease_duration": 3600}}))
        record(rel, "jws-in-json", oracle_json(read(rel)))
