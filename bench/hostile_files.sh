#!/usr/bin/env bash
# Reads that never return, and the cost of the read deadline.
#
#   bench/hostile_files.sh BINARY [N]
#
# 1. `lapse check` on N PEM files (bench/gen_tree.py), median of 5 runs:
#    what running every read on a reader thread under a deadline costs.
# 2. `lapse check` on a kubeconfig whose tokenFile is a FIFO, and on a tree
#    holding a symlink to /dev/zero and a FIFO, each under a 20 s guard:
#    the exit status and the wall time (124 = still hanging at the guard).
set -euo pipefail
bin=$(realpath "$1"); n=${2:-10000}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
python3 "$here/gen_tree.py" "$n" "$work/tree" >/dev/null
times=()
for _ in 1 2 3 4 5; do
  s=$(date +%s.%N); "$bin" check --format json "$work/tree" >/dev/null || true; e=$(date +%s.%N)
  times+=("$(echo "$e - $s" | bc)")
done
printf 'check, %s PEM files: median %s s\n' "$n" "$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)"

mkdir -p "$work/kube" "$work/dev"
mkfifo "$work/kube/token.pipe"
printf 'apiVersion: v1\nkind: Config\nusers:\n- name: ops\n  user:\n    tokenFile: token.pipe\n' > "$work/kube/config"
ln -s /dev/zero "$work/dev/zero.crt"; mkfifo "$work/dev/pipe.crt"
for target in "$work/kube/config" "$work/dev"; do
  s=$(date +%s.%N); rc=0; timeout 20 "$bin" check "$target" >/dev/null 2>&1 || rc=$?; e=$(date +%s.%N)
  printf 'check %s: exit %s after %.2f s\n' "${target#"$work"/}" "$rc" "$(echo "$e - $s" | bc)"
done
