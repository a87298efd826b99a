#!/usr/bin/env python3
"""lapse serve with basic auth under a flood of wrong passwords.

    bench/auth_flood.py                                # target/release/lapse
    bench/auth_flood.py --binary /work/bin/lapse-before
    bench/auth_flood.py --connections 600 --cost 10 --after 30

Writes one certificate and a web config with one user whose bcrypt hash has
cost --cost (default 10, htpasswd's default), starts `BINARY serve` on a free
loopback port, and waits for /readyz with the right password: that first
success warms lapse's cache of verified logins. Then:
  1. opens --connections connections (default 1,200), each sending
     GET /metrics with a distinct wrong password, and keeps them open;
  2. times one GET /metrics with the right password on a new connection
     (status, bytes, seconds; gives up after --timeout, default 30 s);
  3. waits up to 10 s more for the flood's answers and counts them by status;
  4. closes the flood's connections (the flood stops), waits --after seconds
     (default 30) and times the right-password scrape again.
lapse's thread count and VmRSS are sampled at the flood's peak.
Prints a Markdown summary. Every process started here is stopped on exit.
"""

import argparse
import asyncio
import base64
import datetime
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

USER = "prometheus"
PASSWORD = "correct horse battery staple"


def bcrypt_hash(password, cost):
    """A bcrypt hash from the system's crypt(3) (libxcrypt), else PyPI's bcrypt."""
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**cost))
        if hashed and hashed.startswith("$2"):
            return hashed
    except ImportError:
        pass
    import bcrypt  # pip install bcrypt

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()


def certificate(path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flood.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(user, password):
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return (
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Authorization: Basic {auth}\r\n\r\n"
    ).encode()


def status_of(raw):
    try:
        return int(raw.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


async def fetch(port, user, password, timeout):
    """(status, bytes, seconds) of one request read to the end; status None on timeout."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout
        )
        writer.write(request(user, password))
        left = timeout - (time.monotonic() - started)
        raw = await asyncio.wait_for(reader.read(-1), max(left, 0.001))
        writer.close()
    except (asyncio.TimeoutError, OSError):
        return None, 0, time.monotonic() - started
    return status_of(raw), len(raw), time.monotonic() - started


def proc_status(pid):
    fields = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields.get("Threads", "?"), fields.get("VmRSS", "?")


async def wait_ready(port, proc, limit=60):
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if proc.poll() is not None:
            sys.exit(f"auth_flood: lapse exited with {proc.returncode}")
        status, _, _ = await fetch(port, USER, PASSWORD, 5)
        if status == 200:
            return
        await asyncio.sleep(0.05)
    sys.exit("auth_flood: lapse did not become ready")


async def open_flood(port, count):
    async def one(i):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request(USER, f"wrong password {i}"))
            await writer.drain()
            return reader, writer
        except OSError:
            return None

    flood = []
    for start in range(0, count, 200):  # batches: stay within the listen backlog
        flood += await asyncio.gather(*(one(i) for i in range(start, min(start + 200, count))))
    return flood


async def tally(flood, limit):
    deadline = time.monotonic() + limit
    counts = {}

    async def one(conn):
        if conn is None:
            return "connect failed"
        try:
            raw = await asyncio.wait_for(conn[0].read(-1), max(deadline - time.monotonic(), 0.001))
            return status_of(raw) or "closed"
        except (asyncio.TimeoutError, OSError):
            return "no answer"

    for result in await asyncio.gather(*(one(c) for c in flood)):
        counts[result] = counts.get(result, 0) + 1
    return counts


def show(label, result):
    status, size, seconds = result
    answer = f"{status}, {size} bytes" if status else "no answer"
    print(f"| {label} | {answer} | {seconds:.3f} s |")


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/lapse")
    parser.add_argument("--connections", type=int, default=1200)
    parser.add_argument("--cost", type=int, default=10)
    parser.add_argument("--after", type=float, default=30)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()

    work = pathlib.Path(tempfile.mkdtemp(prefix="lapse-auth-flood-"))
    (work / "certs").mkdir()
    certificate(work / "certs" / "flood.crt")
    (work / "web.yml").write_text(
        f"basic_auth_users:\n  {USER}: '{bcrypt_hash(PASSWORD, args.cost)}'\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [os.path.abspath(args.binary), "serve", str(work / "certs"),
         "--web.config.file", str(work / "web.yml"),
         "--web.listen-address", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(work / "lapse.stderr", "w"),
        env={"PATH": "/usr/bin:/bin", "HOME": str(work)},
    )
    try:
        await wait_ready(port, proc)
        print(f"{args.binary}: {args.connections} wrong passwords at bcrypt cost {args.cost}\n")
        print("| step | answer | time |\n|---|---|---|")
        show("right password, cache warm, no flood", await fetch(port, USER, PASSWORD, 10))
        started = time.monotonic()
        flood = await open_flood(port, args.connections)
        opened = time.monotonic() - started
        threads, rss = proc_status(proc.pid)
        show(f"right password, {args.connections} wrong ones in flight",
             await fetch(port, USER, PASSWORD, args.timeout))
        counts = await tally(flood, 10)
        for conn in flood:
            if conn:
                conn[1].close()
        await asyncio.sleep(args.after)
        show(f"right password, {args.after:g} s after the flood stopped",
             await fetch(port, USER, PASSWORD, args.timeout))
        print(f"\nflood opened in {opened:.2f} s; lapse then had {threads} threads, VmRSS {rss}")
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=str))
        print(f"flood answers within 10 s of the timed scrape: {answers}")
        log = (work / "lapse.stderr").read_text()
        warn = [l for l in log.splitlines() if "WARN" in l]
        print(f"lapse logged {len(warn)} WARN lines" + (f"; first: {warn[0]}" if warn else ""))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    asyncio.run(main())
