#!/usr/bin/env python3
"""lapse serve's reloads, timed: SIGHUP and a rotated serving certificate.

    bench/reload.py [--lapse BIN] [--n N] [--reloads R] [--work DIR]

Generates N PEM certificates (bench/gen_tree.py), a CA and a serving
certificate (openssl, serial 1), a web config with TLS and a lapse.yaml
watching the tree, starts `BIN serve --config lapse.yaml` (default
target/release/lapse) on a free loopback port and waits for /readyz. Then:

  1. the serving certificate and key replaced on disk (serial 2, temp +
     rename each): how long until a new TLS connection is given serial 2
     (looked for every 50 ms, for at most 15 s);
  2. SIGHUP after adding a root with one certificate to lapse.yaml: is lapse
     still running, and how long until the new root's series is on /metrics;
     then --reloads (10) more SIGHUPs taking that root out and back, each
     waited for (RSS after every 10);
  3. SIGHUP with a broken lapse.yaml: how long until
     lapse_config_last_reload_successful is 0, and is the old set still served;
  4. SIGTERM: exit status and how long the drain took.

VmRSS is read before and after. Prints a Markdown table. Every wait is
bounded; the lapse started here is stopped on exit. Files go to --work
(default /tmp/lapse-reload).
"""

import argparse
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*cmd, cwd=None):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving_pair(web, serial):
    """A localhost certificate with `serial`, signed by web/ca.*, as web/server.{crt,key}."""
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "new.key", "-out", "new.csr", "-subj", "/CN=lapse", cwd=web)
    with open(os.path.join(web, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "new.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-set_serial", str(serial), "-days", "365", "-extfile", "san.ext", "-out", "new.crt", cwd=web)
    os.rename(os.path.join(web, "new.key"), os.path.join(web, "server.key"))
    os.rename(os.path.join(web, "new.crt"), os.path.join(web, "server.crt"))


def context(web):
    ctx = ssl.create_default_context(cafile=os.path.join(web, "ca.crt"))
    return ctx


def served_serial(ctx, port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as tcp:
        with ctx.wrap_socket(tcp, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"],
                         input=der, capture_output=True, check=True).stdout.decode()
    return int(out.strip().split("=")[1], 16)


def get(ctx, port, path, timeout=30):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as tcp:
        with ctx.wrap_socket(tcp, server_hostname="localhost") as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            chunks = []
            while True:
                try:
                    b = tls.recv(1 << 16)
                except ssl.SSLError:
                    break
                if not b:
                    break
                chunks.append(b)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode(errors="replace")


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def wait(what, test, limit, every=0.05):
    """Seconds until test() held, or None after `limit` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            if test():
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(every)
    print(f"  {what}: not within {limit} s", file=sys.stderr)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lapse", default=os.path.join(ROOT, "target/release/lapse"))
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--work", default="/tmp/lapse-reload")
    ap.add_argument("--reloads", type=int, default=10)
    a = ap.parse_args()

    shutil.rmtree(a.work, ignore_errors=True)
    web = os.path.join(a.work, "web")
    os.makedirs(web)
    run(sys.executable, os.path.join(ROOT, "bench/gen_tree.py"), str(a.n), os.path.join(a.work, "tree"))
    os.makedirs(os.path.join(a.work, "extra"))
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "extra/extra.key", "-out", "extra/extra.crt", "-days", "90", "-subj", "/CN=extra",
        cwd=a.work)
    os.remove(os.path.join(a.work, "extra/extra.key"))
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650", "-subj", "/CN=bench-web-ca", cwd=web)
    serving_pair(web, 1)
    with open(os.path.join(web, "web.yml"), "w") as f:
        f.write("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
    config = os.path.join(a.work, "lapse.yaml")
    with open(config, "w") as f:
        f.write("files:\n  paths: [tree]\nweb_config_file: web/web.yml\n")

    port = free_port()
    ctx = context(web)
    log = open(os.path.join(a.work, "lapse.stderr"), "w")
    proc = subprocess.Popen([a.lapse, "serve", "--config", "lapse.yaml",
                             "--web.listen-address", f"127.0.0.1:{port}"],
                            cwd=a.work, stdout=subprocess.DEVNULL, stderr=log,
                            env={"PATH": "/usr/bin:/bin", "HOME": a.work})
    rows = []
    try:
        ready = wait("ready", lambda: get(ctx, port, "/readyz")[0] == 200, 120, 0.2)
        rows.append(("first scan to /readyz 200", f"{ready:.2f} s" if ready else "not ready"))
        time.sleep(2)
        idle = rss_mib(proc.pid)
        rows.append(("RSS, idle", f"{idle:.1f} MiB"))

        serving_pair(web, 2)
        took = wait("serial 2", lambda: served_serial(ctx, port) == 2, 15)
        rows.append(("serving certificate replaced to served", f"{took:.2f} s" if took else "not within 15 s (the old one served)"))

        with open(config, "w") as f:
            f.write("files:\n  paths: [tree, extra]\nweb_config_file: web/web.yml\n")
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        alive = proc.poll() is None
        if not alive:
            code = proc.wait()
            how = f"killed by signal {-code} (shell status {128 - code})" if code < 0 else f"exit {code}"
        rows.append(("running after SIGHUP", "yes" if alive else f"no: {how}"))
        if alive:
            took = wait("new root", lambda: 'path="extra/extra.crt"' in get(ctx, port, "/metrics")[1], 60, 0.2)
            rows.append(("SIGHUP to the new root's series on /metrics", f"{took + 0.2:.2f} s" if took else "not within 60 s"))
            rows.append(("RSS after the reload", f"{rss_mib(proc.pid):.1f} MiB"))
            # More, the extra root out and in again: each applied before the next.
            for i in range(a.reloads):
                paths, present = ("[tree]", False) if i % 2 == 0 else ("[tree, extra]", True)
                with open(config, "w") as f:
                    f.write(f"files:\n  paths: {paths}\nweb_config_file: web/web.yml\n")
                proc.send_signal(signal.SIGHUP)
                wait("reload", lambda: ('path="extra/extra.crt"' in get(ctx, port, "/metrics")[1]) == present, 60, 0.2)
                if (i + 1) % 10 == 0:
                    rows.append((f"RSS after {i + 1} more reloads", f"{rss_mib(proc.pid):.1f} MiB"))

            with open(config, "w") as f:
                f.write("files:\n  paths: [tree, extra]\nbogus: 1\nweb_config_file: web/web.yml\n")
            proc.send_signal(signal.SIGHUP)
            took = wait("refused", lambda: "lapse_config_last_reload_successful 0" in get(ctx, port, "/metrics")[1], 60, 0.2)
            rows.append(("broken lapse.yaml: SIGHUP to reload_successful 0", f"{took:.2f} s" if took else "not within 60 s"))
            body = get(ctx, port, "/metrics")[1]
            rows.append(("old set still served", "yes" if 'path="extra/extra.crt"' in body else "no"))

            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
            rows.append(("SIGTERM: exit status, drain", f"{code}, {time.monotonic() - started:.2f} s"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"\n`{a.lapse}`, N = {a.n}\n")
    print("| step | result |\n|---|---|")
    for step, result in rows:
        print(f"| {step} | {result} |")


if __name__ == "__main__":
    main()
