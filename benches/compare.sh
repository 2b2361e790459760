#!/usr/bin/env bash
# Times the workloads of ../shared/bench with nixvm and the reference CppNix
# (../shared/tools/reference-nix.sh) in the same run and prints the median wall
# time, peak RSS, the nixvm/CppNix ratios, and whether both printed the same.
#   benches/compare.sh [RUNS] [WORKLOAD-REGEX]
# Workloads that need nixpkgs run only when NIXPKGS points at a tree made by
# ../shared/tools/prepare-nixpkgs.sh (outside this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
FILTER=${2:-micro-}
SHARED=$(cd ../shared && pwd)
NIXVM=${NIXVM:-$PWD/target/release/nixvm}
REF="$SHARED/tools/reference-nix.sh"
NIXPKGS=${NIXPKGS:-}
export REF_BIND="$SHARED${NIXPKGS:+:$NIXPKGS}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One run of "$@" in $tmp: prints "seconds max_rss_kb", or FAILED; output in $tmp/out.
once() {
  (cd "$tmp" && /usr/bin/time -f '%e %M' -o "$tmp/t" "$@" >"$tmp/out" 2>"$tmp/err") || { echo FAILED; return; }
  cat "$tmp/t"
}
# The median of a list of times.
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

printf '| workload | nixvm | CppNix | time ratio | RSS ratio | same output |\n|---|---|---|---|---|---|\n'
for w in "$SHARED"/bench/workloads/*.nix; do
  name=$(basename "$w" .nix)
  [[ "$name" =~ $FILTER ]] || continue
  if grep -q 'nixpkgs +\|import nixpkgs\|nixpkgs + ' "$w"; then
    [ -n "$NIXPKGS" ] || { echo "skipping $name: set NIXPKGS" >&2; continue; }
    echo "import $w { nixpkgs = $NIXPKGS; }" > "$tmp/w.nix"
  else
    echo "import $w { nixpkgs = null; }" > "$tmp/w.nix"
  fi
  # Runs alternate between the two, after one untimed run of each: on this VM
  # the first memory-heavy run after another program's (often the other
  # evaluator's) can spend most of its time in the kernel, compacting memory for
  # huge pages; alternating gives both the same conditions.
  once "$NIXVM" instantiate --eval --strict "$tmp/w.nix" >/dev/null
  once "$REF" run nix-instantiate --eval --strict w.nix >/dev/null
  nts=() cts=() nm=0 cm=0 nt="" ct=""
  for _ in $(seq "$RUNS"); do
    read -r t m <<< "$(once "$NIXVM" instantiate --eval --strict "$tmp/w.nix")"
    [ "$t" = FAILED ] && { nt=FAILED; break; }
    cp "$tmp/out" "$tmp/nixvm.out"
    nts+=("$t"); [ "$m" -gt "$nm" ] && nm=$m
    read -r t m <<< "$(once "$REF" run nix-instantiate --eval --strict w.nix)"
    [ "$t" = FAILED ] && { ct=FAILED; break; }
    cts+=("$t"); [ "$m" -gt "$cm" ] && cm=$m
  done
  if [ "$nt" = FAILED ] || [ "$ct" = FAILED ]; then
    printf '| %s | %s | %s | - | - | - |\n' "$name" "${nt:-ok}" "${ct:-ok}"; continue
  fi
  nt=$(median "${nts[@]}") ct=$(median "${cts[@]}")
  same=$(cmp -s "$tmp/out" "$tmp/nixvm.out" && echo yes || echo NO)
  printf '| %s | %.2f s / %d MB | %.2f s / %d MB | %.2f | %.2f | %s |\n' "$name" "$nt" $((nm / 1024)) "$ct" $((cm / 1024)) \
    "$(echo "$nt / $ct" | bc -l)" "$(echo "$nm / $cm" | bc -l)" "$same"
done
