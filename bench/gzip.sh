#!/usr/bin/env bash
# /metrics at N certificates, plain and gzip: page size and the time of a
# scrape that renders (and compresses) the page and of one served from the
# kept page, for one lapse binary. Reported, never asserted.
#
#   bench/gzip.sh BINARY [N]       # N defaults to 10000
#   LAPSE_SERVE_ARGS="--config every.yaml" bench/gzip.sh BINARY   # extra serve flags
#
# The tree is bench/gen_tree.py's PEM tree, generated once into
# ${LAPSE_BENCH_DIR:-/tmp/lapse-gzip-N}. Each figure is the median of 5
# scrapes, each from a fresh `lapse serve`: the first scrape renders (and
# compresses) every part; the next, in the same second, finds them all
# kept; the one a second later re-renders the two families that read the
# clock, as every Prometheus scrape (15 s apart) does.
set -euo pipefail
bin=${1:?usage: bench/gzip.sh BINARY [N]}
n=${2:-10000}
dir=${LAPSE_BENCH_DIR:-/tmp/lapse-gzip-$n}
here=$(cd "$(dirname "$0")" && pwd)
[ -d "$dir" ] || python3 "$here/gen_tree.py" "$n" "$dir" >/dev/null
port=$((20000 + RANDOM % 20000))
url=http://127.0.0.1:$port/metrics

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

start() {
    # shellcheck disable=SC2086 # LAPSE_SERVE_ARGS is a list of flags
    "$bin" serve --web.listen-address "127.0.0.1:$port" ${LAPSE_SERVE_ARGS:-} "$dir" 2>/dev/null &
    pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; do sleep 0.1; done
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; }

# curl's figures for one scrape: bytes on the wire and seconds.
scrape() { curl -s -o /dev/null -w '%{size_download} %{time_total}\n' "$@" "$url"; }

for coding in identity gzip; do
    header="Accept-Encoding: $coding"
    first=() second=() later=()
    for _ in 1 2 3 4 5; do
        start
        first+=("$(scrape -H "$header")")
        second+=("$(scrape -H "$header")")
        sleep 1.1
        later+=("$(scrape -H "$header")")
        stop
    done
    size=$(printf '%s\n' "${first[@]}" | awk '{print $1}' | median)
    t1=$(printf '%s\n' "${first[@]}" | awk '{print $2}' | median)
    t2=$(printf '%s\n' "${second[@]}" | awk '{print $2}' | median)
    t3=$(printf '%s\n' "${later[@]}" | awk '{print $2}' | median)
    echo "$coding: $size bytes; first scrape ${t1}s, next ${t2}s, a second later ${t3}s"
done
