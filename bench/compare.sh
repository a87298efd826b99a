#!/usr/bin/env bash
# Compare lapse with what operators use today, on the same trees, and measure
# `lapse serve` across N. Writes BENCHMARKS.md.
#
#     bench/compare.sh                      # N = 1,000 and 10,000
#     BENCH_FULL=1 bench/compare.sh         # also N = 100,000
#     BENCH_SIZES=1000 BENCH_OUT=/tmp/b.md bench/compare.sh   # a quick run
#
# For each N, two trees of N files, 100 per directory (bench/gen_tree.py):
# "pem" (one certificate per file) and "mixed" (PEM, bundles, DER, PKCS#12,
# kubeconfigs, JWT files; `gen_tree.py --mix`). On each tree, median of
# $BENCH_RUNS runs (default 3), wall time and peak RSS (/usr/bin/time -v):
#   - lapse:   target/release/lapse check --format json DIR
#   - floor:   the `floor-dir:` line of LAPSE_BENCH_DIR=DIR cargo bench --bench scan
#              (read + parse per kind, one core, in-process; median of 7)
#   - python:  bench/py_expiry.py DIR (`cryptography`, PyYAML)
#   - openssl: bench/openssl_loop.sh on the first $OPENSSL_SAMPLE files
#              (sorted paths, default 1,000), scaled linearly to N
# Every tool must find as many credentials as lapse (the openssl loop on its
# sample, scaled), or the run fails. Then, on the mixed tree, for each N:
#   - serve:   LAPSE_BENCH_DIR=DIR cargo bench --bench serve (cold start,
#              RSS, /metrics render time, size, series, change to visible)
# Trees are kept in $BENCH_WORK (default /tmp/lapse-bench) and reused when
# complete. Every step is bounded by `timeout`. The sections "## Load under
# churn", "## Fuzzing", the layout change's, the hostile-clients, file-formats and scrape-size sections of an
# existing BENCHMARKS.md are kept verbatim.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${BENCH_WORK:-/tmp/lapse-bench}
OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
if [[ -n ${BENCH_SIZES:-} ]]; then
  read -r -a SIZES <<<"$BENCH_SIZES"
else
  SIZES=(1000 10000)
  [[ ${BENCH_FULL:-0} == 1 ]] && SIZES+=(100000)
fi
RUNS=${BENCH_RUNS:-3}
SAMPLE=${OPENSSL_SAMPLE:-1000}
mkdir -p "$WORK"
STARTED=$(date +%s)

# --- prerequisites -----------------------------------------------------------
if [[ ! -x /usr/bin/time ]]; then
  (apt-get install -y -q time || sudo apt-get install -y -q time) >/dev/null
fi
python3 -c 'import cryptography' 2>/dev/null || python3 -m pip install -q cryptography
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q PyYAML
command -v openssl >/dev/null || { echo "openssl is required" >&2; exit 1; }
echo "building lapse and the benches" >&2
timeout 1800 cargo build --release -q
timeout 1800 cargo bench -q --no-run --bench scan --bench serve 2>/dev/null
LAPSE=$ROOT/target/release/lapse

# --- helpers -----------------------------------------------------------------
TIMEFILE=$WORK/time.out
ERRFILE=$WORK/last.err
die() { echo "bench/compare.sh: $*" >&2; exit 1; }
# run_once OUTVAR_WALL OUTVAR_RSS cmd...  -> wall seconds, peak RSS KiB; the
# command's stderr is left in $ERRFILE.
run_once() {
  local t0 t1 status=0
  t0=$(date +%s%N)
  timeout 900 /usr/bin/time -v -o "$TIMEFILE" "${@:3}" >/dev/null 2>"$ERRFILE" || status=$?
  t1=$(date +%s%N)
  # lapse check exits 0-3 by design (ok / warn / critical / errors)
  if (( status > 3 )); then die "command failed ($status): ${*:3}"; fi
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
stderr_count() { awk '/^credentials: /{print $2}' "$ERRFILE" | tail -1; }
fmt_time() { awk -v s="$1" 'BEGIN{ if (s >= 10) printf "%.1f s", s; else if (s >= 1) printf "%.2f s", s; else printf "%.1f ms", s*1e3 }'; }
fmt_ms() { awk -v m="$1" 'BEGIN{ if (m >= 1000) printf "%.2f s", m/1e3; else printf "%.0f ms", m }'; }
fmt_rss() { [[ $1 == - ]] && { echo "n/a"; return; }; awk -v k="$1" 'BEGIN{printf "%.1f MiB", k/1024}'; }
fmt_bytes() { awk -v b="$1" 'BEGIN{ if (b >= 1048576) printf "%.1f MiB", b/1048576; else printf "%.0f KiB", b/1024 }'; }
per_cred() { awk -v s="$1" -v n="$2" 'BEGIN{ u = s*1e6/n; if (u >= 1000) printf "%.1f ms", u/1e3; else if (u >= 100) printf "%.0f µs", u; else printf "%.1f µs", u }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ r=a/b; if (r >= 100) printf "%.0f×", r; else printf "%.2f×", r }'; }
num() { sed -E ':a; s/^([0-9]+)([0-9]{3})/\1,\2/; ta' <<<"$1"; }
kv() { sed -n "s/.*[ :]$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# tree KIND N -> path of a complete tree; sets T_CREDS (credentials in it)
tree() {
  local kind=$1 n=$2 dir=$WORK/$1-$2 done=$WORK/$1-$2.done flag=
  [[ $kind == mixed ]] && flag=--mix
  if [[ ! -s $done ]]; then
    rm -rf "$dir"
    echo "generating $kind tree of $(num "$n") files in $dir" >&2
    local t0
    t0=$(date +%s)
    timeout 1800 python3 bench/gen_tree.py $flag "$n" "$dir" >"$done.tmp"
    mv "$done.tmp" "$done"
    echo "  generated in $(( $(date +%s) - t0 )) s" >&2
  fi
  T_CREDS=$(cat "$done")
  TREE=$dir
}

declare -A ROWS VERDICT
# --- per tree, per N -----------------------------------------------------------
for KIND in pem mixed; do
  for N in "${SIZES[@]}"; do
    tree "$KIND" "$N"
    # warm the page cache once, so every tool sees the same warm tree
    find "$TREE" -type f -exec cat {} + >/dev/null
    echo "$KIND tree, N=$N ($T_CREDS credentials)" >&2

    # lapse's own count, from one untimed run
    read -r L_COUNT L_ERRORS < <(timeout 900 "$LAPSE" check --format json "$TREE" 2>/dev/null |
      python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["credentials"]), len(d["errors"]))' || true)
    echo "  lapse finds ${L_COUNT:-?} credentials, ${L_ERRORS:-?} errors (tree holds $T_CREDS)" >&2
    [[ ${L_COUNT:-} == "$T_CREDS" && ${L_ERRORS:-} == 0 ]] || die "lapse found ${L_COUNT:-?} credentials and ${L_ERRORS:-?} errors in $TREE; the tree holds $T_CREDS"

    measure lapse "$LAPSE" check --format json "$TREE"
    L_WALL=$M_WALL L_RSS=$M_RSS

    echo "  floor: LAPSE_BENCH_DIR=$TREE cargo bench --bench scan" >&2
    FLOOR_OUT=$(LAPSE_BENCH_DIR=$TREE timeout 1800 cargo bench -q --bench scan 2>/dev/null)
    echo "$FLOOR_OUT" | sed 's/^/    /' >&2
    F_COUNT=$(awk '/^floor-dir:/{print $2}' <<<"$FLOOR_OUT")
    F_WALL=$(awk '/^floor-dir:/{print $(NF-1)}' <<<"$FLOOR_OUT")
    [[ -n $F_WALL ]] || die "no floor-dir line in cargo bench output"
    [[ $F_COUNT == "$L_COUNT" ]] || die "floor found $F_COUNT credentials, lapse $L_COUNT"

    measure python python3 "$ROOT/bench/py_expiry.py" "$TREE"
    P_WALL=$M_WALL P_RSS=$M_RSS P_COUNT=$(stderr_count)
    echo "  credentials: lapse $L_COUNT, python $P_COUNT" >&2
    [[ $P_COUNT == "$L_COUNT" ]] || die "the Python script found $P_COUNT credentials, lapse $L_COUNT"

    find "$TREE" -type f | sort | sed -n "1,${SAMPLE}p" >"$WORK/sample-$KIND-$N.txt"
    S=$(wc -l <"$WORK/sample-$KIND-$N.txt")
    measure openssl "$ROOT/bench/openssl_loop.sh" "$WORK/sample-$KIND-$N.txt"
    O_COUNT=$(stderr_count)
    O_WALL=$(awk -v w="$M_WALL" -v n="$N" -v s="$S" 'BEGIN{printf "%.6f", w*n/s}')
    O_RSS=$M_RSS
    O_SCALED=$(( O_COUNT * N / S ))
    echo "  credentials: lapse $L_COUNT, openssl $O_COUNT in $S files (scaled: $O_SCALED)" >&2
    [[ $O_SCALED == "$L_COUNT" ]] || die "the openssl loop found $O_COUNT credentials in $S of $N files, lapse $L_COUNT in all"

    row() { ROWS[$KIND]+="| $(num "$N") | $1 | $(fmt_time "$2") | $(per_cred "$2" "$L_COUNT") | $(fmt_rss "$3") | $(ratio "$2" "$L_WALL") |"$'\n'; }
    row "**lapse** \`check --format json\`" "$L_WALL" "$L_RSS"
    row "floor: read + parse, 1 core ¹" "$F_WALL" -
    row "Python \`cryptography\` script" "$P_WALL" "$P_RSS"
    if (( S < N )); then
      row "openssl loop ² (scaled from $(num "$S") files)" "$O_WALL" "$O_RSS"
    else
      row "openssl loop ²" "$O_WALL" "$O_RSS"
    fi
    if [[ $N == 10000 ]]; then
      VERDICT[$KIND]=$(awk -v l="$L_WALL" -v f="$F_WALL" -v p="$P_WALL" -v o="$O_WALL" 'BEGIN{
        yn = "yes"; no = "**no**"
        printf "At N = 10,000: lapse takes %.2f× the floor (target: within 2×: %s); the Python script takes %.2f× lapse (target ≥ 5×: %s); the openssl loop takes %.0f× lapse (target ≥ 1,000×: %s).",
          l/f, (l/f <= 2 ? yn : no), p/l, (p/l >= 5 ? yn : no), o/l, (o/l >= 1000 ? yn : no) }')
    fi
  done
done

# --- serve across N, mixed tree ------------------------------------------------
SERVE_ROWS=
for N in "${SIZES[@]}"; do
  tree mixed "$N"
  find "$TREE" -type f -exec cat {} + >/dev/null
  echo "serve: LAPSE_BENCH_DIR=$TREE cargo bench --bench serve" >&2
  SERVE_OUT=$(LAPSE_BENCH_DIR=$TREE timeout 1800 cargo bench -q --bench serve 2>/dev/null)
  echo "$SERVE_OUT" | sed 's/^/    /' >&2
  TSV=$(grep '^serve-tsv:' <<<"$SERVE_OUT") || die "no serve-tsv line in cargo bench output"
  SERVE_ROWS+="| $(num "$N") | $(num "$T_CREDS") | $(fmt_ms "$(kv ready_ms "$TSV")") | $(fmt_rss "$(kv rss_ready_kib "$TSV")") | $(fmt_rss "$(kv rss_peak_kib "$TSV")") | $(fmt_ms "$(kv metrics_ms "$TSV")") | $(fmt_bytes "$(kv metrics_bytes "$TSV")") | $(num "$(kv series "$TSV")") | $(fmt_ms "$(kv published_ms "$TSV")") | $(fmt_ms "$(kv visible_ms "$TSV")") |"$'\n'
done

# --- report ------------------------------------------------------------------
table() {
  echo "| N | tool | median wall time | per credential | peak RSS | ratio to lapse |"
  echo "|---:|---|---:|---:|---:|---:|"
  printf '%s' "${ROWS[$1]}"
}
verdict() { echo "${VERDICT[$1]:-N = 10,000 was not measured in this run.}"; }
SERVE_TABLE=$(
  echo "| N files | credentials | cold start to ready | RSS after first scan | peak RSS | \`/metrics\` render (median of 7) | \`/metrics\` size | series | change to published | change to visible |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s' "$SERVE_ROWS"
)
for KIND in pem mixed; do
  echo "$KIND tree:"; table "$KIND"; echo; verdict "$KIND"; echo
done
echo "serve, mixed tree:"; echo "$SERVE_TABLE"

# A section of the existing file, kept verbatim, or a marked placeholder.
keep_section() {
  local title=$1 kept=
  [[ -f $OUT ]] && kept=$(awk -v t="## $title" '$0 == t {on=1; print; next} on && /^## /{exit} on' "$OUT")
  if [[ -n $kept ]]; then
    printf '%s\n' "$kept"
  else
    printf '## %s\n\n_Placeholder: not measured yet; bench/compare.sh keeps this section as it finds it._\n\n' "$title"
  fi
}

CPU=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
MEM=$(free -h | awk '/^Mem:/{print $2}')
CMD="bench/compare.sh"
[[ $SAMPLE != 1000 ]] && CMD="OPENSSL_SAMPLE=$SAMPLE $CMD"
[[ $RUNS != 3 ]] && CMD="BENCH_RUNS=$RUNS $CMD"
if [[ -n ${BENCH_SIZES:-} ]]; then
  CMD="BENCH_SIZES='${BENCH_SIZES}' $CMD"
elif [[ ${BENCH_FULL:-0} == 1 ]]; then
  CMD="BENCH_FULL=1 $CMD"
fi
LOAD=$(keep_section "Load under churn")
FUZZ=$(keep_section "Fuzzing")
LAYOUT=$(keep_section "The layout change (issue 11): check and serve at N = 10,000, before and after")
HOSTILE=$(keep_section "Hostile clients and bad days (issue 12)")
FORMATS=$(keep_section "Files from every tool (issue 13)")
SCRAPE=$(keep_section "Scrape size and compression (issue 14)")
ISSUE15_1=$(keep_section '`lapse check` memory (issue 15, first step)')
ISSUE15_2=$(keep_section '`lapse check` speed and memory (issue 15, second step)')
ISSUE15_3=$(keep_section '`lapse serve` start-up: watches added after the first scan (issue 15, third step)')
ISSUE15_4=$(keep_section '`lapse serve` memory: `/metrics` kept compressed, Kubernetes pages, the allocator (issue 15, fourth step)')
ISSUE15_5=$(keep_section '`lapse serve` memory: label sets not kept, paths shared, the 1M tree (issue 15, fifth step)')
ISSUE15_6=$(keep_section '`lapse serve` and `lapse check` memory: a compact record (issue 15, sixth step)')
NEW=$(mktemp)
{
  cat <<MD
# Benchmarks

## lapse against what operators use today

Measured $(date -u '+%Y-%m-%d %H:%M UTC') at commit $(git rev-parse --short HEAD) on $(nproc) cores
(${CPU:-unknown CPU}), ${MEM} RAM (\`free -h\`), $(uname -sr); the whole run took $(( ($(date +%s) - STARTED) / 60 )) min.

Reproduce (from the repository root; add \`BENCH_FULL=1\` for N = 100,000):

\`\`\`sh
$CMD
\`\`\`

Two trees per N, generated by \`bench/gen_tree.py\`, N files in 100 per directory, every leaf certificate and token
I expiring at 2027-01-01 + I hours (ECDSA P-256 keys from fixed scalars):

- **PEM**: N files \`cert-I.crt\`, one certificate each — N credentials.
- **mixed** (\`gen_tree.py --mix\`), file I of kind I mod 20, so every directory holds the same mix — 1.3 N credentials:

  | share of files | kind | credentials per file |
  |---:|---|---:|
  | 50 % | PEM, one certificate (\`cert-I.crt\`) | 1 |
  | 10 % | PEM bundle, leaf + intermediate (\`bundle-I.pem\`) | 2 |
  | 10 % | DER certificate (\`cert-I.der\`) | 1 |
  | 10 % | PKCS#12, empty password, certificate + key (\`store-I.p12\`, \`cryptography\`'s \`NoEncryption\`) | 1 |
  | 10 % | kubeconfig: \`certificate-authority-data\`, \`client-certificate-data\` + key, a second user with a JWT \`token\` (\`kube-I.kubeconfig\`) | 3 |
  | 5 % | JWT with \`exp\` (\`id-I.jwt\`) | 1 |
  | 5 % | JWT with \`exp\` (\`sa-I.token\`) | 1 |

Every tool reads the same tree with a warm page cache and must report as many credentials as lapse (the run fails
otherwise). Wall time is the median of $RUNS runs, peak RSS the largest \`Maximum resident set size\` of
\`/usr/bin/time -v\` over them; "per credential" is wall time over the number of credentials; "ratio to lapse" is
the tool's wall time divided by lapse's on the same tree (higher means lapse is faster).

### PEM tree

$(table pem)

$(verdict pem)

### Mixed tree

$(table mixed)

$(verdict mixed)

- **lapse**: \`target/release/lapse check --format json DIR > /dev/null\` (walk, read, sniff, parse, evaluate, JSON
  out; all cores). Its JSON carries subject, issuer, fingerprint and status per credential, far more than the
  other tools print.
- ¹ **floor**: the \`floor-dir:\` line of \`LAPSE_BENCH_DIR=DIR cargo bench --bench scan\` (\`benches/scan.rs\`):
  on one core, read each file and do the least work for its kind, chosen by file name — PEM: base64 +
  x509-parser; DER: x509-parser; PKCS#12: p12-keystore with the empty password + x509-parser; kubeconfig:
  serde-saphyr into the three fields + base64 + x509-parser; JWT: base64url + serde_json for \`exp\`. No
  sniffing, no credential records, in-process (no process start-up, so no peak RSS of its own); median of 7.
  (\`cargo bench --bench scan\` without \`LAPSE_BENCH_DIR\` still measures the PEM-only floor on its own rcgen tree.)
- **Python**: \`bench/py_expiry.py DIR\` — \`os.walk\`, dispatch on the file name, \`cryptography\`
  (\`load_pem_x509_certificates\`, \`load_der_x509_certificate\`, \`pkcs12.load_pkcs12\`), PyYAML's \`safe_load\` for
  kubeconfigs, base64 + \`json\` for JWTs; prints each expiry.
- ² **openssl loop**: \`bench/openssl_loop.sh LIST\`, one loop over the files, dispatched on the file name:
  \`openssl x509 -noout -enddate\` (PEM), \`openssl storeutl -noout -text -certs | grep 'Not After'\` (bundles),
  \`openssl x509 -inform DER\` (DER), \`openssl pkcs12 -nokeys -passin pass: | openssl x509 -enddate\` (PKCS#12),
  \`grep | base64 -d | openssl x509 -enddate\` per \`*-data\` field and \`cut | base64 -d | grep '"exp"'\` per token
  (kubeconfigs, JWTs). It costs one or more process starts per file, so it runs on the first $(num "$SAMPLE") files
  (sorted paths: whole directories, so the same mix) and its time is scaled linearly to N; its peak RSS is that of
  the largest single process.

## lapse serve across N

\`LAPSE_BENCH_DIR=DIR cargo bench --bench serve\` (\`benches/serve.rs\`) on each mixed tree above: \`lapse serve DIR\`
from process start to \`/readyz\` 200 (walk, read and parse everything); resident memory then (VmRSS) and at its
peak after the scrapes (VmHWM); \`/metrics\` in the classic text format, median of 7 scrapes, its size and the number
of series in it; then one \`cert-*.crt\` rewritten in place with a new \`not_after\` (median of 3): until lapse logs
the rescan as published (100 ms of it is the debounce), and until a scrape shows the new value (includes one full
scrape).

$SERVE_TABLE

$LOAD

$FUZZ

$LAYOUT

$HOSTILE

$FORMATS

$SCRAPE

$ISSUE15_1

$ISSUE15_2

$ISSUE15_3

$ISSUE15_4

$ISSUE15_5

$ISSUE15_6

## Kubernetes

Copied from README.md's "Performance" section; each figure comes from the \`cargo bench\` command above it.

MD
  awk '/^## Performance/{on=1; next} on && /^## /{exit} on' README.md | sed -e '1{/^$/d}' -e 's/^### /#### /'
} >"$NEW"
mv "$NEW" "$OUT"
echo "wrote $OUT ($(( ($(date +%s) - STARTED) / 60 )) min)" >&2
