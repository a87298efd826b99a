#!/usr/bin/env bash
# What one hostile input costs `lapse check`: wall time, peak RSS, error
# entries and bytes of JSON report, for each binary given (default: the
# release build of this tree).
#
#     bench/caps.sh [LAPSE_BINARY ...]
#
# Cases, built once in a temporary directory:
#   p12      200 PKCS#12 files from `openssl pkcs12 -export -iter 1000000`
#            (one store, copied), 5 configured keystore passwords, none right
#   blocks   one 1 MiB file of empty certificate PEM blocks
#   blocks12 one 11.8 MB file of them
#   secrets  80 Secrets of 1 MiB of empty PEM blocks, one JSON file each
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- target/release/lapse
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/p12/stores"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=p12 -days 30 \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
openssl pkcs12 -export -iter 1000000 -in "$work/cert.pem" -inkey "$work/key.pem" \
  -passout pass:right -out "$work/one.p12"
for i in $(seq 1 200); do cp "$work/one.p12" "$work/p12/stores/s$i.p12"; done
for i in 1 2 3 4 5; do echo "wrong-$i" > "$work/p12/p$i.pass"; done
printf 'files:\n  paths: [stores]\nkeystore_passwords: [p1.pass, p2.pass, p3.pass, p4.pass, p5.pass]\n' \
  > "$work/p12/lapse.yaml"

python3 - "$work" <<'PY'
import base64, json, sys
work = sys.argv[1]
block = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"
one = block * ((1 << 20) // len(block))
open(f"{work}/blocks.pem", "w").write(one)
open(f"{work}/blocks12.pem", "w").write(block * (11_800_000 // len(block)))
b64 = base64.b64encode(one.encode()).decode()
import os
os.makedirs(f"{work}/secrets")
for i in range(80):
    doc = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
           "metadata": {"namespace": "web", "name": f"junk-{i}"}, "data": {"ca.crt": b64}}
    json.dump(doc, open(f"{work}/secrets/junk-{i}.json", "w"))
PY

run() { # name binary dir args...
  local name=$1 bin=$2 dir=$3; shift 3
  local out="$work/out.json" t="$work/time.txt"
  (cd "$dir" && /usr/bin/time -v -o "$t" "$bin" check --format json "$@" >"$out" 2>"$work/stderr" || true)
  local wall rss errors size
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$t")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$t")
  errors=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["errors"]))' "$out")
  size=$(stat -c %s "$out")
  printf '%-9s %-40s wall %-8s rss %7s MiB  errors %7s  json %9s bytes  stderr %9s bytes\n' \
    "$name" "$bin" "$wall" "$rss" "$errors" "$size" "$(stat -c %s "$work/stderr")"
}

for bin in "$@"; do
  bin=$(readlink -f "$bin")
  run p12 "$bin" "$work/p12" --config lapse.yaml
  run blocks "$bin" "$work" blocks.pem
  run blocks12 "$bin" "$work" blocks12.pem
  run secrets "$bin" "$work" secrets
done
