#!/usr/bin/env bash
# Compare `lapse check` with what operators use today, on the same tree.
#
#     bench/compare.sh                 # N = 1,000 and 10,000
#     BENCH_FULL=1 bench/compare.sh    # also N = 100,000
#
# For each N: generate N PEM certificates (100 per directory, bench/gen_tree.py),
# then time, median of 3 runs each, wall time and peak RSS (/usr/bin/time -v):
#   - lapse:   target/release/lapse check --format json DIR
#   - python:  bench/py_expiry.py DIR (the `cryptography` package)
#   - openssl: for f in $(find DIR -name '*.crt'); do openssl x509 -noout -enddate -in "$f"; done
#              on a 1,000-file sample, scaled linearly to N
#   - floor:   the "floor: read + x509-parser, 1 core" line of
#              `LAPSE_BENCH_N=N cargo bench --bench scan` (its own tree, same shape; median of 7)
# Prints a Markdown table and writes BENCHMARKS.md. Trees are kept in
# $BENCH_WORK (default /tmp/lapse-bench) and reused when already complete.
# Every step is bounded by `timeout`.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${BENCH_WORK:-/tmp/lapse-bench}
SIZES=(1000 10000)
[[ ${BENCH_FULL:-0} == 1 ]] && SIZES+=(100000)
RUNS=3
SAMPLE=1000
mkdir -p "$WORK"

# --- prerequisites -----------------------------------------------------------
if [[ ! -x /usr/bin/time ]]; then
  (apt-get install -y -q time || sudo apt-get install -y -q time) >/dev/null
fi
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install -q cryptography
command -v openssl >/dev/null || { echo "openssl is required" >&2; exit 1; }
timeout 1800 cargo build --release -q
LAPSE=$ROOT/target/release/lapse

# --- helpers -----------------------------------------------------------------
# run_once OUTVAR_WALL OUTVAR_RSS cmd...  -> wall seconds, peak RSS KiB
TIMEFILE=$WORK/time.out
run_once() {
  local t0 t1 status=0
  t0=$(date +%s%N)
  timeout 900 /usr/bin/time -v -o "$TIMEFILE" "${@:3}" >/dev/null 2>&1 || status=$?
  t1=$(date +%s%N)
  # lapse check exits 0-3 by design (ok / warn / critical / errors)
  if (( status > 3 )); then echo "command failed ($status): ${*:3}" >&2; exit 1; fi
  printf -v "$1" '%s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.6f", (b-a)/1e9}')"
  printf -v "$2" '%s' "$(awk -F': ' '/Maximum resident set size/{print $2}' "$TIMEFILE")"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
# measure NAME cmd... -> sets M_WALL (median s), M_RSS (max KiB)
measure() {
  local walls=() rsss=() w r i
  for ((i = 0; i < RUNS; i++)); do
    run_once w r "${@:2}"
    walls+=("$w"); rsss+=("$r")
  done
  M_WALL=$(median "${walls[@]}")
  M_RSS=$(printf '%s\n' "${rsss[@]}" | sort -n | tail -1)
  echo "  $1: runs ${walls[*]} s -> median $M_WALL s, peak RSS $M_RSS KiB" >&2
}
fmt_time() { awk -v s="$1" 'BEGIN{ if (s >= 10) printf "%.1f s", s; else if (s >= 1) printf "%.2f s", s; else printf "%.1f ms", s*1e3 }'; }
fmt_rss() { [[ $1 == - ]] && { echo "n/a"; return; }; awk -v k="$1" 'BEGIN{printf "%.1f MiB", k/1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ r=a/b; if (r >= 100) printf "%.0f×", r; else printf "%.2f×", r }'; }

ROWS=()
row() { ROWS+=("| $(printf "%'d" "$1") | $2 | $(fmt_time "$3") | $(fmt_rss "$4") | $(ratio "$3" "$5") |"); }

# --- per N -------------------------------------------------------------------
for N in "${SIZES[@]}"; do
  TREE=$WORK/tree-$N
  have=$(find "$TREE" -name '*.crt' 2>/dev/null | wc -l || true)
  if [[ $have != "$N" ]]; then
    rm -rf "$TREE"
    echo "generating $N certificates in $TREE" >&2
    t0=$(date +%s)
    timeout 1200 python3 bench/gen_tree.py "$N" "$TREE"
    echo "  generated in $(( $(date +%s) - t0 )) s" >&2
  fi
  # warm the page cache once, so every tool sees the same warm tree
  find "$TREE" -type f -exec cat {} + >/dev/null

  echo "N=$N" >&2
  measure lapse "$LAPSE" check --format json "$TREE"
  L_WALL=$M_WALL L_RSS=$M_RSS

  measure python python3 "$ROOT/bench/py_expiry.py" "$TREE"
  P_WALL=$M_WALL P_RSS=$M_RSS

  find "$TREE" -name '*.crt' | sort | sed -n "1,${SAMPLE}p" >"$WORK/sample-$N.txt"
  S=$(wc -l <"$WORK/sample-$N.txt")
  # shellcheck disable=SC2016
  measure openssl bash -c 'for f in $(cat "$1"); do openssl x509 -noout -enddate -in "$f"; done' _ "$WORK/sample-$N.txt"
  O_WALL=$(awk -v w="$M_WALL" -v n="$N" -v s="$S" 'BEGIN{printf "%.6f", w*n/s}')
  O_RSS=$M_RSS

  echo "  floor: LAPSE_BENCH_N=$N cargo bench --bench scan" >&2
  FLOOR_OUT=$(LAPSE_BENCH_N=$N timeout 1800 cargo bench -q --bench scan 2>/dev/null)
  echo "$FLOOR_OUT" | sed 's/^/    /' >&2
  F_WALL=$(echo "$FLOOR_OUT" | awk '/^floor:/{for(i=1;i<=NF;i++) if($i=="median"){printf "%.6f", $(i+1)/1e3}}')
  [[ -n $F_WALL ]] || { echo "no floor line in cargo bench output" >&2; exit 1; }

  LAST_N=$N LAST_L=$L_WALL LAST_F=$F_WALL LAST_P=$P_WALL LAST_O=$O_WALL
  row "$N" "**lapse** \`check --format json\`" "$L_WALL" "$L_RSS" "$L_WALL"
  row "$N" "floor: read + x509-parser, 1 core ¹" "$F_WALL" - "$L_WALL"
  row "$N" "Python \`cryptography\` script" "$P_WALL" "$P_RSS" "$L_WALL"
  if (( S < N )); then
    row "$N" "\`openssl x509 -enddate\` loop ² (scaled from $(printf "%'d" "$S") files)" "$O_WALL" "$O_RSS" "$L_WALL"
  else
    row "$N" "\`openssl x509 -enddate\` loop" "$O_WALL" "$O_RSS" "$L_WALL"
  fi
done

# --- report ------------------------------------------------------------------
TABLE=$(
  echo "| N | tool | median wall time | peak RSS | ratio to lapse |"
  echo "|---:|---|---:|---:|---:|"
  printf '%s\n' "${ROWS[@]}"
)
VERDICT=$(awk -v n="$LAST_N" -v l="$LAST_L" -v f="$LAST_F" -v p="$LAST_P" -v o="$LAST_O" 'BEGIN{
  yn = "yes"; no = "**no**"
  printf "At N = %d: lapse takes %.2f× the floor (target: within 2×: %s); the Python script takes %.2f× lapse (target ≥ 5×: %s); the openssl loop takes %.0f× lapse (target ≥ 1,000×: %s).\n",
    n, l/f, (l/f <= 2 ? yn : no), p/l, (p/l >= 5 ? yn : no), o/l, (o/l >= 1000 ? yn : no) }')
echo "$TABLE"
echo
echo "$VERDICT"

CPU=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
MEM=$(free -h | awk '/^Mem:/{print $2}')
CMD="bench/compare.sh"
[[ ${BENCH_FULL:-0} == 1 ]] && CMD="BENCH_FULL=1 bench/compare.sh"
{
  cat <<MD
# Benchmarks

## lapse against what operators use today

Measured $(date -u '+%Y-%m-%d %H:%M UTC') at commit $(git rev-parse --short HEAD) on $(nproc) cores
(${CPU:-unknown CPU}), ${MEM} RAM (\`free -h\`), $(uname -sr).

Reproduce (from the repository root):

\`\`\`sh
$CMD
\`\`\`

Each tree holds N PEM certificate files, 100 per directory, generated by \`bench/gen_tree.py\` (one CA key, one
leaf key, N ECDSA P-256 certificates with distinct CNs and expiries). Every tool reads the same tree with a warm
page cache; wall time is the median of $RUNS runs, peak RSS the largest \`Maximum resident set size\` of
\`/usr/bin/time -v\` over them. "Ratio to lapse" is the tool's wall time divided by lapse's at the same N
(higher means lapse is faster).

$TABLE

$VERDICT

- **lapse**: \`target/release/lapse check --format json DIR > /dev/null\` (walk, read, parse, evaluate, JSON out;
  all cores). Its JSON is far larger than the Python script's output (about 5 MB against 0.7 MB at N = 10,000:
  subject, issuer, fingerprint and status per certificate).
- **Python**: \`bench/py_expiry.py DIR\` — \`os.walk\`, \`x509.load_pem_x509_certificates\`, prints each
  \`not_valid_after_utc\`.
- **openssl loop**: \`for f in \$(find DIR -name '*.crt'); do openssl x509 -noout -enddate -in "\$f"; done\`.
- ¹ The floor is the \`floor: read + x509-parser, 1 core\` line of \`LAPSE_BENCH_N=N cargo bench --bench scan\`
  (\`benches/scan.rs\`): read each file and parse it with x509-parser, nothing else, on one core. That bench
  generates its own tree of the same shape (rcgen, 100 files per directory) and reports the median of 7 runs;
  it runs in-process, so it has no process start-up and no peak RSS of its own.
- ² The openssl loop costs one process start per file, so it is run on a sample of the first $SAMPLE files
  (sorted paths) and its time scaled linearly to N; its peak RSS is that of one \`openssl\` process.

MD
  echo "## Serve, Kubernetes and scan benchmarks"
  echo
  echo "Copied from README.md's \"Performance\" section; each figure comes from the \`cargo bench\` command above it."
  echo
  awk '/^## Performance/{on=1; next} on && /^## /{exit} on' README.md | sed -e '1{/^$/d}' -e 's/^### /#### /'
} >BENCHMARKS.md
echo "wrote BENCHMARKS.md" >&2
