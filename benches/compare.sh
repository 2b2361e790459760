#!/usr/bin/env bash
# Times the micro workloads of ../shared/bench with nixvm and the reference
# CppNix (../shared/tools/reference-nix.sh) in the same run and prints the
# median wall time, peak RSS and the nixvm/CppNix ratios.
#   benches/compare.sh [RUNS] [WORKLOAD-REGEX]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
FILTER=${2:-micro-}
SHARED=$(cd ../shared && pwd)
NIXVM=${NIXVM:-$PWD/target/release/nixvm}
REF="$SHARED/tools/reference-nix.sh"
export REF_BIND="$SHARED"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

measure() { # prints "median_seconds max_rss_kb" for the command
  local times=() rss=0
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f '%e %M' -o "$tmp/t" "$@" >/dev/null 2>"$tmp/err" || { echo "FAILED"; return; }
    read -r t m < "$tmp/t"
    times+=("$t"); [ "$m" -gt "$rss" ] && rss=$m
  done
  printf '%s %s\n' "$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")" "$rss"
}

printf '| workload | nixvm | CppNix | time ratio | RSS ratio |\n|---|---|---|---|---|\n'
for w in "$SHARED"/bench/workloads/*.nix; do
  name=$(basename "$w" .nix)
  [[ "$name" =~ $FILTER ]] || continue
  echo "import $w { nixpkgs = null; }" > "$tmp/w.nix"
  read -r nt nm <<< "$(measure "$NIXVM" instantiate --eval --strict "$tmp/w.nix")"
  read -r ct cm <<< "$(cd "$tmp" && measure "$REF" run nix-instantiate --eval --strict w.nix)"
  if [ "$nt" = FAILED ] || [ "$ct" = FAILED ]; then
    printf '| %s | %s | %s | - | - |\n' "$name" "$nt" "$ct"; continue
  fi
  printf '| %s | %.2f s / %d MB | %.2f s / %d MB | %.2f | %.2f |\n' "$name" "$nt" $((nm / 1024)) "$ct" $((cm / 1024)) \
    "$(echo "$nt / $ct" | bc -l)" "$(echo "$nm / $cm" | bc -l)"
done
