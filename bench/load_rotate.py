#!/usr/bin/env python3
"""Rotations under load, for bench/load.sh.

    bench/load_rotate.py setup TREE
    bench/load_rotate.py run --tree TREE --n N --url URL --seconds S --out ROT.json
    bench/load_rotate.py report --n N --seconds S --rotations ROT.json --wrk WRK.out \
        --rss RSS.tsv --load-start T0 --load-end T1 [--warmup S --rss-bound-mib M --rss-bound-pct P]

setup: adds ATOMIC_DIRS Kubernetes atomic-writer directories to a tree made by
bench/gen_tree.py (TREE/k8s/tls-J/..2026_…/tls.crt, ..data -> ..2026_…,
tls.crt -> ..data/tls.crt), as the kubelet mounts a Secret; run it before
lapse starts.

run: for S seconds, rotates one certificate every 250-500 ms (seeded, so
runs are comparable), cycling through four styles: rewrite in place,
write a temporary file and rename it over, delete and create, and an
atomic-writer `..data` swap. Every rotation writes a certificate with a new
not_after (2031-01-01 + k hours) and serial (1,000,000 + k). A poller
scrapes /metrics back to back (OpenMetrics, and checks every page ends with
`# EOF`) and records when each rotated path shows exactly one
`lapse_credential_validity_seconds` series with the new value (not_before
stays 2026-01-01, so the window names the not_after):
rotation-to-visible latency, measured from the end of the write to the end
of the scrape that showed it. A rotation not visible within VISIBLE_WITHIN
seconds fails. A last scrape checks every rotated path holds its last value
and the tree's series count is exact (no temporary file or old series left).

report: prints the Markdown summary of the run (wrk's LOAD line from
bench/load.lua, the RSS samples, the rotations) and exits 1 when a scrape
failed, a rotation was not seen in time, or RSS grew past the bound.
"""
import argparse
import datetime
import json
import os
import random
import re
import shutil
import sys
import threading
import time
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

ATOMIC_DIRS = 8
VISIBLE_WITHIN = 10.0
STYLES = ("rewrite", "rename", "delete-create", "data-swap")
NOT_AFTER = "lapse_credential_validity_seconds{"
# Every certificate's not_before: validity + this is its not_after.
NOT_BEFORE = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc).timestamp()
PATH_LABEL = re.compile(r'[{,]path="([^"]*)"')
OPENMETRICS = "application/openmetrics-text;version=1.0.0"
SCRAPE_TIMEOUT = 10.0

_ca_key = ec.generate_private_key(ec.SECP256R1())
_leaf_key = ec.generate_private_key(ec.SECP256R1())
_CA = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-ca")])


def certificate(cn, serial, not_after):
    """PEM bytes of a leaf certificate with these CN, serial and not_after."""
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(_CA)
        .public_key(_leaf_key.public_key())
        .serial_number(serial)
        .not_valid_before(datetime.datetime.fromtimestamp(NOT_BEFORE, datetime.timezone.utc))
        .not_valid_after(not_after)
        .sign(_ca_key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.PEM)


def atomic_dir(tree, j):
    return os.path.join(tree, "k8s", f"tls-{j}")


def data_swap(directory, pem, stamp):
    """The kubelet's atomic writer: a new timestamped directory, a new
    `..data` symlink renamed over the old one, the old directory removed."""
    new = f"..{stamp}"
    os.makedirs(os.path.join(directory, new))
    with open(os.path.join(directory, new, "tls.crt"), "wb") as f:
        f.write(pem)
    data = os.path.join(directory, "..data")
    old = os.readlink(data) if os.path.islink(data) else None
    tmp = os.path.join(directory, "..data_tmp")
    os.symlink(new, tmp)
    os.rename(tmp, data)
    if old:
        shutil.rmtree(os.path.join(directory, old))


def stamp_for(k):
    t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("%Y_%m_%d_%H_%M_%S.") + f"{k:09d}"


def setup(tree):
    base = datetime.datetime(2027, 6, 1, tzinfo=datetime.timezone.utc)
    for j in range(ATOMIC_DIRS):
        d = atomic_dir(tree, j)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
        data_swap(d, certificate(f"tls-{j}.example.com", 900_000 + j, base), stamp_for(j))
        os.symlink("..data/tls.crt", os.path.join(d, "tls.crt"))


def rotate(style, path, pem, k):
    """Writes `pem` at `path` the way `style` does; returns when it is done."""
    if style == "rewrite":
        with open(path, "wb") as f:  # O_TRUNC: same inode, rewritten
            f.write(pem)
    elif style == "rename":
        tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp")
        with open(tmp, "wb") as f:
            f.write(pem)
        os.rename(tmp, path)
    elif style == "delete-create":
        os.unlink(path)
        with open(path, "wb") as f:
            f.write(pem)
    else:
        data_swap(os.path.dirname(path), pem, stamp_for(k))


def scrape(url):
    """(not_after values by path, series count, monotonic time the page was
    read) of one whole /metrics page; raises on anything but a complete 200
    page."""
    req = urllib.request.Request(url, headers={"Accept": OPENMETRICS})
    with urllib.request.urlopen(req, timeout=SCRAPE_TIMEOUT) as resp:
        if resp.status != 200:
            raise RuntimeError(f"status {resp.status}")
        text = resp.read().decode()
    read_at = time.monotonic()
    if not text.endswith("# EOF\n"):
        raise RuntimeError(f"truncated page ({len(text)} bytes, no '# EOF')")
    values = {}
    for line in text.splitlines():
        if line.startswith(NOT_AFTER):
            m = PATH_LABEL.search(line)
            values.setdefault(m.group(1), []).append(float(line.rsplit(" ", 1)[1]) + NOT_BEFORE)
    return values, sum(len(v) for v in values.values()), read_at


def run(args):
    tree = os.path.abspath(args.tree)
    rng = random.Random(7)
    base = datetime.datetime(2031, 1, 1, tzinfo=datetime.timezone.utc)
    lock = threading.Lock()
    pending = {}  # path -> rotation record
    rotations = []
    scrapes = {"ok": 0, "failed": 0, "errors": []}
    last_value = {}
    stop = threading.Event()

    def poll():
        while True:
            with lock:
                waiting = bool(pending)
            if stop.is_set() and not waiting:
                return
            try:
                values, _, seen = scrape(args.url)
            except Exception as e:  # noqa: BLE001 - every failure is recorded
                values, seen = None, time.monotonic()
                with lock:
                    scrapes["failed"] += 1
                    scrapes["errors"].append(f"{time.strftime('%H:%M:%S')} {e}")
            with lock:
                for path, rec in list(pending.items()):
                    got = values.get(path, []) if values is not None else []
                    if got == [rec["not_after"]]:
                        rec["visible_after_s"] = seen - rec["at"]
                        del pending[path]
                        continue
                    if len(got) > 1:
                        rec["duplicates_seen"] = rec.get("duplicates_seen", 0) + 1
                    if seen - rec["at"] > VISIBLE_WITHIN:
                        rec["visible_after_s"] = None
                        rec["last_seen_values"] = got
                        del pending[path]
                if values is not None:
                    scrapes["ok"] += 1
            if values is None:
                time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    end = time.monotonic() + args.seconds
    next_at = time.monotonic()
    k = 0
    atomic_next = 0
    while True:
        next_at += rng.uniform(0.25, 0.5)
        if next_at >= end:
            break
        time.sleep(max(0.0, next_at - time.monotonic()))
        style = STYLES[k % len(STYLES)]
        with lock:
            busy = set(pending)
        if style == "data-swap":
            free = [j for j in range(ATOMIC_DIRS)
                    if os.path.join(atomic_dir(tree, (atomic_next + j) % ATOMIC_DIRS), "tls.crt") not in busy]
            if not free:
                k += 1
                continue
            j = (atomic_next + free[0]) % ATOMIC_DIRS
            atomic_next = j + 1
            path = os.path.join(atomic_dir(tree, j), "tls.crt")
            cn = f"tls-{j}.example.com"
        else:
            i = rng.randrange(args.n)
            while os.path.join(tree, "d%03d" % (i // 100), f"cert-{i}.crt") in busy:
                i = (i + 1) % args.n
            path = os.path.join(tree, "d%03d" % (i // 100), f"cert-{i}.crt")
            cn = f"host-{i}.example.com"
        not_after = base + datetime.timedelta(hours=k)
        pem = certificate(cn, 1_000_000 + k, not_after)
        rotate(style, path, pem, k)
        rec = {"k": k, "style": style, "path": path, "not_after": not_after.timestamp(),
               "at": time.monotonic()}
        with lock:
            rotations.append(rec)
            pending[path] = rec
            last_value[path] = rec["not_after"]
        k += 1
    stop.set()
    poller.join(timeout=VISIBLE_WITHIN + 2 * SCRAPE_TIMEOUT)

    # The last word: every rotated path holds its last value, and nothing
    # else is left (temporary files, old series): N + ATOMIC_DIRS series.
    final = {"ok": False}
    try:
        values, count, _ = scrape(args.url)
        wrong = [p for p, v in last_value.items() if values.get(p) != [v]]
        final = {"ok": not wrong and count == args.n + ATOMIC_DIRS, "series": count,
                 "expected": args.n + ATOMIC_DIRS, "wrong_paths": wrong[:10]}
    except Exception as e:  # noqa: BLE001
        final = {"ok": False, "error": str(e)}
    for rec in rotations:
        rec.pop("at", None)
    with open(args.out, "w") as f:
        json.dump({"rotations": rotations, "poller_scrapes": scrapes, "final": final}, f, indent=1)


def pct(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, -(-len(s) * p // 100) - 1))]


def report(args):
    failures = []
    wrk = {}
    with open(args.wrk) as f:
        for line in f:
            if line.startswith("LOAD "):
                wrk = {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    if not wrk:
        failures.append("wrk did not finish (no LOAD line from bench/load.lua)")
        wrk = {k: 0.0 for k in ("requests", "bytes", "duration_us", "non2xx", "connect", "read",
                                "write", "timeout", "lat_p50_us", "lat_p99_us", "lat_max_us")}
    socket_errors = int(wrk["connect"] + wrk["read"] + wrk["write"] + wrk["timeout"])
    if wrk["non2xx"]:
        failures.append(f"{int(wrk['non2xx'])} non-2xx responses")
    if socket_errors:
        failures.append(f"{socket_errors} socket errors")

    with open(args.rotations) as f:
        rot = json.load(f)
    rotations = rot["rotations"]
    lat = [r["visible_after_s"] for r in rotations if r.get("visible_after_s") is not None]
    missed = [r for r in rotations if r.get("visible_after_s") is None]
    if missed:
        failures.append(f"{len(missed)} rotations not visible within {VISIBLE_WITHIN:.0f} s: "
                        + ", ".join(f"#{r['k']} {r['style']} {r['path']}" for r in missed[:5]))
    if not rotations:
        failures.append("no rotation was done")
    ps = rot["poller_scrapes"]
    if ps["failed"]:
        failures.append(f"{ps['failed']} poller scrapes failed: " + "; ".join(ps["errors"][:3]))
    if not rot["final"].get("ok"):
        failures.append(f"final scrape: {rot['final']}")
    dup = sum(1 for r in rotations if r.get("duplicates_seen"))

    samples = []
    with open(args.rss) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2:
                samples.append((float(parts[0]), int(parts[1]) / 1024))
    during = [(t, m) for t, m in samples if t <= args.load_end]
    if not during:
        failures.append("no RSS samples")
        during = [(0.0, 0.0)]
    first = during[0][1]
    warm = [m for t, m in during if t >= args.load_start + args.warmup] or [during[-1][1]]
    baseline, last = warm[0], during[-1][1]
    growth = last - baseline
    bound = max(args.rss_bound_mib, baseline * args.rss_bound_pct / 100)
    if growth > bound:
        failures.append(f"RSS grew {growth:.1f} MiB (bound {bound:.1f} MiB)")
    rss_all = [m for _, m in during]
    # Least-squares slope after the warm-up: "flat" over the whole run, not
    # only between two samples.
    tail = [(t, m) for t, m in during if t >= args.load_start + args.warmup]
    slope = None
    if len(tail) >= 20:  # fewer (the quick run) make a trend out of noise
        mt = sum(t for t, _ in tail) / len(tail)
        mm = sum(m for _, m in tail) / len(tail)
        var = sum((t - mt) ** 2 for t, _ in tail)
        slope = sum((t - mt) * (m - mm) for t, m in tail) / var * 60 if var else 0.0
    # Allocator high-water marks rise early and level off; a leak does not.
    half = [m for t, m in tail if t >= (tail[0][0] + tail[-1][0]) / 2] if tail else []
    second_half = last - half[0] if half else None

    secs = wrk["duration_us"] / 1e6 or 1
    by_style = {s: [r["visible_after_s"] for r in rotations
                    if r["style"] == s and r.get("visible_after_s") is not None] for s in STYLES}
    ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
    rows = [
        ("certificates (N) + atomic-writer Secrets", f"{args.n:,} + {ATOMIC_DIRS}"),
        ("load duration", f"{secs:.1f} s (wrk -t2 -c{args.connections}, --timeout 10s)"),
        ("scrapes by wrk", f"{int(wrk['requests']):,}"),
        ("scrapes/s", f"{wrk['requests'] / secs:.1f}"),
        ("transfer/s", f"{wrk['bytes'] / secs / 2**20:.1f} MiB/s "
                       f"({wrk['bytes'] / max(wrk['requests'], 1) / 2**20:.2f} MiB per page)"),
        ("scrape latency p50 / p99 / max",
         f"{wrk['lat_p50_us'] / 1000:.0f} / {wrk['lat_p99_us'] / 1000:.0f} / "
         f"{wrk['lat_max_us'] / 1000:.0f} ms"),
        ("non-2xx responses", f"{int(wrk['non2xx'])}"),
        ("socket errors (connect/read/write/timeout)",
         f"{socket_errors} ({int(wrk['connect'])}/{int(wrk['read'])}/"
         f"{int(wrk['write'])}/{int(wrk['timeout'])})"),
        ("poller scrapes (whole page, `# EOF` checked) ok / failed", f"{ps['ok']} / {ps['failed']}"),
        ("rotations done / visible", f"{len(rotations)} / {len(lat)}"),
        ("rotation to visible p50 / p95 / max",
         f"{ms(pct(lat, 50))} / {ms(pct(lat, 95))} / {ms(max(lat))}" if lat else "n/a"),
        ("… by style (p50 / max)", "; ".join(
            f"{s} {ms(pct(v, 50))} / {ms(max(v))} ({len(v)})" for s, v in by_style.items() if v)),
        ("final scrape: series / expected",
         f"{rot['final'].get('series', '?')} / {rot['final'].get('expected', '?')}"),
        ("rotations with a duplicate series seen", f"{dup}"),
        ("RSS first after ready / min / max / last",
         f"{first:.1f} / {min(rss_all):.1f} / {max(rss_all):.1f} / {last:.1f} MiB"),
        (f"RSS growth (last − after {args.warmup:.0f} s of load)",
         f"{growth:+.1f} MiB from {baseline:.1f} MiB (bound {bound:.1f} MiB)"),
        ("RSS trend after the warm-up (least squares)",
         f"{slope:+.2f} MiB/min over {len(tail)} samples" if slope is not None else "n/a (under 20 samples)"),
        ("RSS growth over the second half of that", f"{second_half:+.1f} MiB" if second_half is not None else "n/a"),
    ]
    print("| what | figure |")
    print("|---|---|")
    for what, fig in rows:
        print(f"| {what} | {fig} |")
    print()
    if failures:
        print("**FAIL**")
        for f in failures:
            print(f"- {f}")
        return 1
    print("**PASS**: no failed scrape, every rotation visible, memory flat.")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("tree")
    r = sub.add_parser("run")
    r.add_argument("--tree", required=True)
    r.add_argument("--n", type=int, required=True)
    r.add_argument("--url", required=True)
    r.add_argument("--seconds", type=float, required=True)
    r.add_argument("--out", required=True)
    q = sub.add_parser("report")
    q.add_argument("--n", type=int, required=True)
    q.add_argument("--connections", type=int, required=True)
    q.add_argument("--rotations", required=True)
    q.add_argument("--wrk", required=True)
    q.add_argument("--rss", required=True)
    q.add_argument("--load-start", type=float, required=True)
    q.add_argument("--load-end", type=float, required=True)
    q.add_argument("--warmup", type=float, default=10.0)
    q.add_argument("--rss-bound-mib", type=float, default=20.0)
    q.add_argument("--rss-bound-pct", type=float, default=10.0)
    args = p.parse_args()
    if args.cmd == "setup":
        setup(args.tree)
    elif args.cmd == "run":
        run(args)
    else:
        sys.exit(report(args))


if __name__ == "__main__":
    main()
