#!/usr/bin/env python3
"""lapse serve against hostile clients: figures, and pass/fail on the goals.

    bench/hostile.py [--lapse target/release/lapse] [--n 10000] [--clients 1000] [--idle 500]

Generates N PEM certificates (bench/gen_tree.py; kept in $HOSTILE_WORK,
default /tmp/lapse-hostile, and reused when already there), starts
`LAPSE serve TREE` on a free loopback port, waits for /readyz and takes one
scrape (the idle RSS is read after it), then:

1. opens CLIENTS connections with a 1 KiB receive buffer that send
   `GET /metrics` and never read; 2 s later, while they are all open, one
   real scrape (whole page, 200, every not_after series counted) is timed,
   and lapse's RSS is sampled every 0.2 s for 5 s; they are then closed and
   the RSS read again 3 s later;
2. opens IDLE connections that send nothing and times how long until the
   server has closed every one of them (given up after 60 s).

Goals (exit 1 when one is missed): peak RSS while the slow clients are
open < idle RSS + 64 MiB; the real scrape gets 200 with N series in < 1 s;
every idle connection closed by the server within 60 s.
Prints a Markdown summary.
"""
import argparse
import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scrape(port, timeout):
    """(status, seconds, not_after series, bytes, seconds to the header) of one whole GET /metrics."""
    start = time.monotonic()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        header_s = time.monotonic() - start
        body = r.read()
        status = r.status
        conn.close()
    except Exception as e:  # a timeout or a reset is a figure, not a crash
        return (f"error: {e}", time.monotonic() - start, 0, 0, 0.0)
    took = time.monotonic() - start
    series = sum(
        1 for line in body.split(b"\n") if line.startswith(b"lapse_credential_expires_in_seconds{")
    )
    return (status, took, series, len(body), header_s)


def non_reader(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lapse", default=os.path.join(ROOT, "target/release/lapse"))
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--idle", type=int, default=500)
    args = ap.parse_args()
    work = os.environ.get("HOSTILE_WORK", "/tmp/lapse-hostile")
    os.makedirs(work, exist_ok=True)
    tree = os.path.join(work, f"tree-{args.n}")
    if not os.path.isdir(tree):
        subprocess.run(
            ["python3", os.path.join(HERE, "gen_tree.py"), str(args.n), tree],
            check=True, timeout=1200, stdout=subprocess.DEVNULL,
        )
    port = free_port()
    log = open(os.path.join(work, "lapse.log"), "w")
    env = {"PATH": "/usr/bin:/bin", "HOME": work, "KUBECONFIG": os.path.join(work, "none")}
    lapse = subprocess.Popen(
        [args.lapse, "serve", tree, "--web.listen-address", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=log, env=env,
    )
    failed = []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except Exception:
                pass
            if time.monotonic() > deadline or lapse.poll() is not None:
                sys.exit("lapse did not become ready")
            time.sleep(0.1)
        warm = scrape(port, 30)
        time.sleep(1)
        idle_rss = rss_kib(lapse.pid)

        # 1. slow clients, then a real scrape while they are open.
        slow = []
        opened_at = time.monotonic()
        for _ in range(args.clients):
            try:
                slow.append(non_reader(port))
            except OSError as e:
                print(f"client {len(slow)}: {e}", file=sys.stderr)
                break
        open_s = time.monotonic() - opened_at
        time.sleep(2)
        real = scrape(port, 10)
        peak = 0
        for _ in range(25):
            peak = max(peak, rss_kib(lapse.pid))
            time.sleep(0.2)
        peak_threads = threads(lapse.pid)
        for s in slow:
            s.close()
        time.sleep(3)
        after_rss = rss_kib(lapse.pid)
        after = scrape(port, 10)

        # 2. idle connections, closed by the server?
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.idle)]
        started = time.monotonic()
        pending = {s.fileno(): s for s in idle}
        while pending and time.monotonic() - started < 60:
            ready, _, _ = select.select(list(pending.values()), [], [], 0.5)
            for s in ready:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    del pending[s.fileno()]
        idle_closed = args.idle - len(pending)
        idle_s = time.monotonic() - started
        for s in idle:
            s.close()
    finally:
        lapse.send_signal(signal.SIGTERM)
        try:
            lapse.wait(timeout=30)
        except subprocess.TimeoutExpired:
            lapse.kill()

    mib = lambda kib: f"{kib / 1024:.1f} MiB"
    growth = peak - idle_rss
    if growth >= 64 * 1024:
        failed.append(f"RSS grew {mib(growth)} with {len(slow)} slow clients (goal < 64 MiB)")
    if not (real[0] == 200 and real[2] == args.n and real[1] < 1.0):
        failed.append(f"real scrape among slow clients: {real[0]}, {real[2]} series, {real[1]:.2f} s")
    if pending:
        failed.append(f"{len(pending)} of {args.idle} idle connections still open after 60 s")
    print(f"### lapse serve vs hostile clients: N = {args.n:,}, `{args.lapse}`\n")
    print(f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} cores, "
          f"load average {open('/proc/loadavg').read().split()[0]}\n")
    print("| figure | value |\n|---|---|")
    print(f"| warm-up scrape | {warm[0]}, {warm[2]:,} series, {warm[3]:,} bytes, {warm[1]:.2f} s |")
    print(f"| idle RSS | {mib(idle_rss)} |")
    print(f"| {len(slow):,} non-reading clients opened in | {open_s:.2f} s |")
    print(f"| peak RSS with them open (above idle) | {mib(peak)} ({mib(growth)}) |")
    print(f"| threads with them open | {peak_threads} |")
    print(f"| real scrape among them | {real[0]}, {real[2]:,} series, {real[1]:.2f} s (header after {real[4]:.2f} s) |")
    print(f"| RSS 3 s after they closed | {mib(after_rss)} |")
    print(f"| scrape after they closed | {after[0]}, {after[2]:,} series, {after[1]:.2f} s |")
    print(f"| {args.idle} idle connections closed by the server | {idle_closed} in {idle_s:.1f} s |")
    if failed:
        print("\n**FAIL**")
        for f in failed:
            print(f"- {f}")
        sys.exit(1)
    print("\n**PASS**")


if __name__ == "__main__":
    main()
