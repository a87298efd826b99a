#!/usr/bin/env bash
# lapse serve under load: concurrent scrapes while certificates rotate.
#
#     bench/load.sh                     # N = 10,000 certificates, 60 s of load
#     bench/load.sh --quick             # N = 1,000, 10 s: the CI smoke run
#     LOAD_N=2000 LOAD_SECONDS=30 bench/load.sh   # or --n 2000 --seconds 30
#
# Generates N PEM certificates (bench/gen_tree.py, 100 per directory) plus 8
# Kubernetes atomic-writer Secret directories (bench/load_rotate.py setup),
# starts `target/release/lapse serve TREE` on a free loopback port, waits for
# /readyz, then for LOAD_SECONDS at once:
#   - wrk -t2 -c$LOAD_CONNECTIONS (default 8) scrapes /metrics with
#     Prometheus's Accept header; bench/load.lua counts non-2xx responses;
#   - bench/load_rotate.py rotates one certificate every 250-500 ms (rewrite
#     in place, temp + rename, delete + create, `..data` swap), each with a
#     new not_after, and scrapes until the new value is the path's only
#     not_after series (rotation-to-visible latency; over 10 s fails);
#   - lapse's VmRSS is sampled every second.
# Prints a Markdown summary; exits 1 on any non-2xx or socket error from wrk, a
# failed or truncated poller scrape, a rotation not visible within 10 s, a
# stale series at the end, lapse dying or not draining on SIGTERM, or RSS growth
# (last sample minus the sample after the warm-up, 10 s or a third of the
# run) over max(LOAD_RSS_BOUND_MIB = 20 MiB, LOAD_RSS_BOUND_PCT = 10 % of it).
# Why that bound: what a leak here would keep is page- or snapshot-sized (a
# 10,000-credential page is 13 MiB, a snapshot several MiB), and a minute
# holds ~3,000 scrapes and ~160 rotations, so one leaked per event is hundreds
# of MiB; while eight pages in flight on a blocking pool push the allocator's
# high-water mark up for the first minute (measured: ~+10 MiB, then < 1 MiB
# a minute over 3 minutes), which a tighter bound would call a leak.
# Files go to $LOAD_WORK (default /tmp/lapse-load). Every step is bounded by
# `timeout`; every process started here is stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
N=${LOAD_N:-10000}
DURATION=${LOAD_SECONDS:-60}
CONNECTIONS=${LOAD_CONNECTIONS:-8}
WORK=${LOAD_WORK:-/tmp/lapse-load}
RSS_BOUND_MIB=${LOAD_RSS_BOUND_MIB:-20}
RSS_BOUND_PCT=${LOAD_RSS_BOUND_PCT:-10}
while (($#)); do
  case $1 in
    --quick) N=1000 DURATION=10 ;;
    --n) N=$2; shift ;;
    --seconds) DURATION=$2; shift ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
  shift
done
[[ $N =~ ^[0-9]+$ && $DURATION =~ ^[0-9]+$ && $N -ge 100 && $DURATION -ge 5 ]] ||
  { echo "load.sh: N must be >= 100 and the duration >= 5 s (got N=$N, ${DURATION}s)" >&2; exit 2; }
mkdir -p "$WORK"
log() { echo "load.sh: $*" >&2; }

# --- prerequisites -----------------------------------------------------------
apt_install() {
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  timeout 300 "${sudo[@]}" apt-get install -y -q "$@" >/dev/null ||
    { timeout 300 "${sudo[@]}" apt-get update -q >/dev/null &&
      timeout 300 "${sudo[@]}" apt-get install -y -q "$@" >/dev/null; }
}
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v pgrep >/dev/null || missing+=(procps)
((${#missing[@]} == 0)) || { log "installing ${missing[*]}"; apt_install "${missing[@]}"; }
python3 -c 'import cryptography' 2>/dev/null || timeout 300 python3 -m pip install -q cryptography
log "building (cargo build --release)"
timeout 1800 cargo build --release -q
LAPSE=$ROOT/target/release/lapse

# --- processes, stopped on exit ------------------------------------------------
PIDS=()
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -- "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the tree ----------------------------------------------------------------
# Regenerated every run: the rotations of the last one changed it.
TREE=$WORK/tree-$N
rm -rf "$TREE"
log "generating $N certificates in $TREE"
timeout 1200 python3 bench/gen_tree.py "$N" "$TREE" >&2
timeout 60 python3 bench/load_rotate.py setup "$TREE"

# --- lapse ---------------------------------------------------------------------
PORT=${LOAD_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
BASE=http://127.0.0.1:$PORT
# No KUBECONFIG, no ~/.kube/config: the tree alone, so the series count is exact.
KUBECONFIG=$WORK/no-kubeconfig timeout -s TERM $((DURATION + 600)) \
  "$LAPSE" serve "$TREE" --web.listen-address "127.0.0.1:$PORT" >"$WORK/lapse.log" 2>&1 &
TIMEOUT_PID=$!
PIDS+=("$TIMEOUT_PID")
LAPSE_PID=
for _ in $(seq 50); do
  LAPSE_PID=$(pgrep -P "$TIMEOUT_PID" || true)
  [[ -n $LAPSE_PID ]] && break
  sleep 0.1
done
[[ -n $LAPSE_PID ]] || { log "lapse did not start"; cat "$WORK/lapse.log" >&2; exit 1; }
started=$(date +%s.%N)
ready=0
for _ in $(seq 1200); do
  if timeout 2 curl -sf -o /dev/null "$BASE/readyz"; then ready=1; break; fi
  kill -0 "$LAPSE_PID" 2>/dev/null || break
  sleep 0.1
done
((ready)) || { log "lapse not ready within 120 s"; cat "$WORK/lapse.log" >&2; exit 1; }
ready_s=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
log "lapse (pid $LAPSE_PID) ready on $BASE after ${ready_s} s"

# --- RSS, every second -----------------------------------------------------------
RSS=$WORK/rss.tsv
: >"$RSS"
# Bounded by its own deadline, and ends with lapse.
sample_rss() {
  local deadline=$((SECONDS + DURATION + 300)) rss
  while ((SECONDS < deadline)) &&
    rss=$(awk '/^VmRSS:/{print $2}' "/proc/$LAPSE_PID/status" 2>/dev/null) && [[ -n $rss ]]; do
    echo "$(date +%s.%N) $rss"
    sleep 1
  done
}
sample_rss >>"$RSS" &
PIDS+=("$!")

# --- load + rotations ---------------------------------------------------------------
log "load: wrk -t2 -c$CONNECTIONS -d${DURATION}s on /metrics, rotations every 250-500 ms"
load_start=$(date +%s.%N)
loadavg_before=$(cut -d" " -f1-3 /proc/loadavg)
timeout $((DURATION + 60)) wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency --timeout 10s \
  -s bench/load.lua "$BASE/metrics" >"$WORK/wrk.out" 2>&1 &
WRK_PID=$!
PIDS+=("$WRK_PID")
timeout $((DURATION + 90)) python3 bench/load_rotate.py run --tree "$TREE" --n "$N" \
  --url "$BASE/metrics" --seconds "$DURATION" --out "$WORK/rotations.json" &
ROT_PID=$!
PIDS+=("$ROT_PID")
wrk_status=0
wait "$WRK_PID" || wrk_status=$?
load_end=$(date +%s.%N)
loadavg_after=$(cut -d" " -f1-3 /proc/loadavg)
rot_status=0
wait "$ROT_PID" || rot_status=$?
cat "$WORK/wrk.out" >&2

failed=()
((wrk_status == 0)) || failed+=("wrk exited $wrk_status")
((rot_status == 0)) || failed+=("load_rotate.py run exited $rot_status")
if kill -0 "$LAPSE_PID" 2>/dev/null; then
  errors=$(timeout 30 curl -sf "$BASE/metrics" | awk '/^lapse_errors_total\{source="files"/{s+=$2} END{print s+0}') || errors='?'
  # A sidecar is stopped often: SIGTERM must drain and exit 0.
  kill -TERM "$LAPSE_PID"
  lapse_status=0
  wait "$TIMEOUT_PID" || lapse_status=$?
  ((lapse_status == 0)) || failed+=("lapse exited $lapse_status on SIGTERM")
else
  errors='?'
  failed+=("lapse died during the load (see $WORK/lapse.log)")
fi

# --- summary -------------------------------------------------------------------------
warmup=$((DURATION / 3 < 10 ? DURATION / 3 : 10))
echo
echo "### lapse serve under load: N = $(printf "%'d" "$N"), ${DURATION} s"
echo
revision=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
git diff --quiet HEAD -- src Cargo.toml Cargo.lock build.rs 2>/dev/null || revision+=" with uncommitted changes to src/"
echo "$(date -u '+%Y-%m-%d %H:%M') UTC, commit $revision, $(nproc) cores ($(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)), load average $loadavg_before at the start and $loadavg_after at the end of the load (other work included); lapse ready after ${ready_s} s; \`lapse_errors_total{source=\"files\"}\` after the run: $errors."
echo
status=0
timeout 60 python3 bench/load_rotate.py report --n "$N" --connections "$CONNECTIONS" \
  --rotations "$WORK/rotations.json" --wrk "$WORK/wrk.out" --rss "$RSS" \
  --load-start "$load_start" --load-end "$load_end" --warmup "$warmup" \
  --rss-bound-mib "$RSS_BOUND_MIB" --rss-bound-pct "$RSS_BOUND_PCT" || status=$?
if ((${#failed[@]})); then
  ((status)) || echo "**FAIL**"
  printf -- '- %s\n' "${failed[@]}"
  status=1
fi
exit "$status"
