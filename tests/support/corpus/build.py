#!/usr/bin/env python3
"""Builds the differential corpus and what an independent oracle reads in it.

    build.py OUT

writes OUT/corpus/... (about 1,100 files: Debian's CA certificates as single
files, DER and PKCS#7 and as the bundle, the JDK's cacerts, keystores written
by keytool, OpenSSL's library and openssl, PKCS#7 bundles, keys of every type,
JWS/JWE vectors) and OUT/oracle.json:

    {"passwords": [...configured...], "secrets": [...texts that must never be shown...],
     "files": {"corpus/REL": {"class": "...", "expect": "certs|tokens|none|unreadable",
                              "not_after": [RFC 3339 or null, sorted], "why": "...",
                              "integrity_error": bool, "may_error": bool}}}

The oracle is cryptography, pyjks, jwcrypto and the openssl CLI reading each
file as it was written to disk; nothing here knows how lapse reads anything.
"""

import datetime
import json
import os
import sys

sys.dont_write_bytecode = True  # nothing written beside the sources

import common  # noqa: E402
from certs import ca_certificates, certificates, keys, pkcs7_bundles  # noqa: E402
from stores import keytool_stores, pkcs12_stores, secrets_and_nothing  # noqa: E402
from tokens import tokens  # noqa: E402


def main():
    started = datetime.datetime.now()
    for section in (ca_certificates, certificates, keys, pkcs12_stores, keytool_stores, pkcs7_bundles, tokens,
                    secrets_and_nothing):
        t = datetime.datetime.now()
        section()
        print(f"{section.__name__}: {(datetime.datetime.now() - t).total_seconds():.1f}s", file=sys.stderr)
    with open(os.path.join(common.OUT, "oracle.json"), "w") as f:
        json.dump({"passwords": common.CONFIGURED, "secrets": sorted(common.SECRETS), "files": common.ORACLE}, f, indent=1,
                  ensure_ascii=False)
    took = (datetime.datetime.now() - started).total_seconds()
    print(f"corpus: {len(common.ORACLE)} files in {took:.1f}s", file=sys.stderr)


main()
