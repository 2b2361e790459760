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

measure() { # prints "median_seconds max_rss_kb" for the command
  local times=() rss=0
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %M' -o "$tmp/t" "$@" >"$tmp/out" 2>"$tmp/err" || { echo "FAILED"; return; }
    read -r t m < "$tmp/t"
    times+=("$t"); [ "$m" -gt "$rss" ] && rss=$m
  done
  printf '%s %s\n' "$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")" "$rss"
}

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
  read -r nt nm <<< "$(measure "$NIXVM" instantiate --eval --strict "$tmp/w.nix")"
  cp "$tmp/out" "$tmp/nixvm.out"
  read -r ct cm <<< "$(cd "$tmp" && measure "$REF" run nix-instantiate --eval --strict w.nix)"
  if [ "$nt" = FAILED ] || [ "$ct" = FAILED ]; then
    printf '| %s | %s | %s | - | - | - |\n' "$name" "$nt" "$ct"; continue
  fi
  same=$(cmp -s "$tmp/out" "$tmp/nixvm.out" && echo yes || echo NO)
  printf '| %s | %.2f s / %d MB | %.2f s / %d MB | %.2f | %.2f | %s |\n' "$name" "$nt" $((nm / 1024)) "$ct" $((cm / 1024)) \
    "$(echo "$nt / $ct" | bc -l)" "$(echo "$nm / $cm" | bc -l)" "$same"
done
