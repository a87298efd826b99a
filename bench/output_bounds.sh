#!/usr/bin/env bash
# What a flood of bad input costs the page at / and the log of `lapse serve`.
#
#     bench/output_bounds.sh [BINARY]      # default target/debug/lapse
#     OB_CERTS=10000 OB_ERRORS=20000 bench/output_bounds.sh /work/bin/lapse-before
#
# Builds a tree of OB_CERTS copies of one certificate (default 10,000) and
# OB_ERRORS broken PEM files (default 20,000: one error entry each), starts
# `BINARY serve TREE` on a free loopback port, waits for /readyz, fetches /
# once and reports the page's bytes, its credential and error rows, and the
# bytes and lines lapse wrote to stderr by then. Sizes, not timings: any
# build profile gives the same figures. Files go to $OB_WORK (default
# /tmp/lapse-output-bounds).
set -euo pipefail
BIN=${1:-target/debug/lapse}
CERTS=${OB_CERTS:-10000}
ERRORS=${OB_ERRORS:-20000}
WORK=${OB_WORK:-/tmp/lapse-output-bounds}
rm -rf "$WORK" && mkdir -p "$WORK/tree"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 400 \
  -subj /CN=bench -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
python3 - "$WORK/tree" "$WORK/cert.pem" "$CERTS" "$ERRORS" <<'PY'
import os, sys
tree, cert, n, e = sys.argv[1], open(sys.argv[2]).read(), int(sys.argv[3]), int(sys.argv[4])
for i in range(n):
    d = f"{tree}/c{i // 100:03}"; os.makedirs(d, exist_ok=True)
    open(f"{d}/{i:05}.pem", "w").write(cert)
for i in range(e):
    d = f"{tree}/e{i // 100:03}"; os.makedirs(d, exist_ok=True)
    open(f"{d}/{i:05}.crt", "w").write("-----BEGIN CERTIFICATE-----\nMIIB\n")
PY
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --web.listen-address "127.0.0.1:$PORT" "$WORK/tree" 2>"$WORK/stderr" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -sf "http://127.0.0.1:$PORT/" -o "$WORK/page.html"
sleep 1
echo "| binary | certificates | errors | page bytes | credential rows | error rows | stderr bytes | stderr lines |"
echo "|---|---|---|---|---|---|---|---|"
printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(basename "$BIN")" "$CERTS" "$ERRORS" \
  "$(wc -c <"$WORK/page.html")" "$(grep -o '<tr><td class=' "$WORK/page.html" | wc -l)" \
  "$(grep -o '<tr><td>' "$WORK/page.html" | wc -l)" "$(wc -c <"$WORK/stderr")" "$(wc -l <"$WORK/stderr")"
grep -o '<p>[0-9]* more [^<]*' "$WORK/page.html" || true
