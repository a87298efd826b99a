#!/usr/bin/env python3
"""Large Secret dumps as `kubectl get secrets -A -o yaml` writes them, and
what `lapse check` costs on them.

    bench/large_dump.py write N FILE [--stream] [--expired K]
    bench/large_dump.py measure [N] [LAPSE_BINARY ...]

`write`: N `kubernetes.io/tls` Secrets, each with its own certificate
(Python's `cryptography`, OpenSSL underneath): one P-256 key signs them all;
certificate I has serial I+1, `CN=host-I.example.com`, not_before
2026-01-01 and not_after 2027-01-01 + I hours, except the first K
(default 0), which expired at 2026-01-01 + I hours; each Secret carries the
annotations and label cert-manager gives it. Layout is kubectl's:
`apiVersion: v1`, `items:` of `- apiVersion: v1` objects with `data:`
`tls.crt` / `tls.key` base64 on one line, keys sorted, then `kind: List`
and `metadata: resourceVersion: ""`. With `--stream`, the same Secrets as
a `---`-separated stream of documents instead of a List. Printed: the
file's size in bytes.

`measure`: writes a dump of N Secrets (default 10,000; 16 MB), as a List
and as a `---` stream, the first 10 expired, and for each binary (default: target/release/lapse), runs
`lapse check --max-file-size 32MiB --format json --at 2026-06-01T00:00:00Z`
under `/usr/bin/time -v`: wall time, peak RSS, exit code, credentials and
error entries.
"""

import base64
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

BASE_NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
BASE_NOT_AFTER = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)
AT = "2026-06-01T00:00:00Z"


def not_after(i, expired):
    if i < expired:
        return BASE_NOT_BEFORE + dt.timedelta(hours=i)
    return BASE_NOT_AFTER + dt.timedelta(hours=i)


def b64(data):
    return base64.b64encode(data).decode()


def secrets(n, expired):
    """The Secrets' YAML, each as kubectl indents a List item."""
    key = ec.derive_private_key(0x1A95E, ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    key_b64 = b64(key_pem)
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dump-ca")])
    for i in range(n):
        cn = f"host-{i}.example.com"
        start = BASE_NOT_BEFORE - dt.timedelta(days=30) if i < expired else BASE_NOT_BEFORE
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(i + 1)
            .not_valid_before(start)
            .not_valid_after(not_after(i, expired))
            .sign(key, hashes.SHA256())
        )
        crt_b64 = b64(cert.public_bytes(serialization.Encoding.PEM))
        yield (
            "apiVersion: v1\n"
            "data:\n"
            f"  tls.crt: {crt_b64}\n"
            f"  tls.key: {key_b64}\n"
            "kind: Secret\n"
            "metadata:\n"
            "  annotations:\n"
            f"    cert-manager.io/alt-names: {cn}\n"
            f"    cert-manager.io/certificate-name: web-{i}\n"
            f"    cert-manager.io/common-name: {cn}\n"
            '    cert-manager.io/ip-sans: ""\n'
            "    cert-manager.io/issuer-group: cert-manager.io\n"
            "    cert-manager.io/issuer-kind: ClusterIssuer\n"
            "    cert-manager.io/issuer-name: dump-ca\n"
            '    cert-manager.io/uri-sans: ""\n'
            '  creationTimestamp: "2026-01-01T00:00:00Z"\n'
            "  labels:\n"
            '    controller.cert-manager.io/fao: "true"\n'
            f"  name: web-{i}-tls\n"
            f"  namespace: ns-{i % 100}\n"
            f'  resourceVersion: "{100000 + i}"\n'
            f"  uid: 00000000-0000-4000-8000-{i:012d}\n"
            "type: kubernetes.io/tls\n"
        )


def indent_item(doc):
    lines = doc.splitlines()
    return "- " + lines[0] + "\n" + "".join(f"  {line}\n" for line in lines[1:])


def write(n, path, stream=False, expired=0):
    with open(path, "w") as f:
        if stream:
            for j, doc in enumerate(secrets(n, expired)):
                if j:
                    f.write("---\n")
                f.write(doc)
        else:
            f.write("apiVersion: v1\nitems:\n")
            for doc in secrets(n, expired):
                f.write(indent_item(doc))
            f.write('kind: List\nmetadata:\n  resourceVersion: ""\n')
    return os.path.getsize(path)


def measure(n, binaries):
    with tempfile.TemporaryDirectory() as work:
        for stream in (False, True):
            dump = os.path.join(work, "stream.yaml" if stream else "list.yaml")
            size = write(n, dump, stream, expired=10)
            shape = "--- stream" if stream else "List"
            print(f"dump: {n} Secrets as a {shape}, {size} bytes ({size / 1e6:.1f} MB)")
            run(work, dump, binaries)


def run(work, dump, binaries):
    """`lapse check` of `dump` by each binary, under `/usr/bin/time -v`."""
    for binary in binaries:
        out = subprocess.run(
            ["/usr/bin/time", "-v", binary, "check", "--max-file-size", "32MiB",
             "--format", "json", "--at", AT, dump],
            capture_output=True, text=True, env={"HOME": work, "PATH": "/usr/bin:/bin"},
        )
        stats = {}
        for line in out.stderr.splitlines():
            k, _, v = line.strip().rpartition(": ")
            stats[k] = v
        try:
            report = json.loads(out.stdout)
            creds, errors = len(report["credentials"]), len(report["errors"])
            first = report["errors"][0]["reason"] if errors else ""
        except (ValueError, KeyError):
            creds, errors, first = "?", "?", out.stdout[:200]
        print(
            f"{binary}: exit {out.returncode}, {creds} credentials, {errors} errors {first!r}, "
            f"wall {stats.get('Elapsed (wall clock) time (h:mm:ss or m:ss)')}, "
            f"user {stats.get('User time (seconds)')} s, "
            f"peak RSS {int(stats.get('Maximum resident set size (kbytes)', 0)) // 1024} MiB"
        )


def main(argv):
    if len(argv) >= 3 and argv[0] == "write":
        expired = int(argv[argv.index("--expired") + 1]) if "--expired" in argv else 0
        print(write(int(argv[1]), argv[2], "--stream" in argv, expired))
    elif argv and argv[0] == "measure":
        rest = argv[1:]
        n = int(rest.pop(0)) if rest and rest[0].isdigit() else 10_000
        measure(n, rest or ["target/release/lapse"])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
