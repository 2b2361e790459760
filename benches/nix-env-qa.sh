#!/usr/bin/env bash
# `nix-env -f NIXPKGS -qaP` with the reference CppNix and with nixvm (one
# process, then 1..MAX workers) in the same run, alternating, after one
# untimed run of each. Prints wall and user time, peak RSS (for nixvm with
# workers: each worker's peak and the sampled peak of their sum), the time
# ratios, and whether the lines printed are identical.
#   NIXPKGS=/path/to/nixpkgs benches/nix-env-qa.sh [RUNS] [MAX_WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-1}
MAXW=${2:-2}
SHARED=$(cd ../shared && pwd)
NIXVM=${NIXVM:-$PWD/target/release/nixvm}
REF="$SHARED/tools/reference-nix.sh"
NIXPKGS=${NIXPKGS:?set NIXPKGS to a tree made by ../shared/tools/prepare-nixpkgs.sh}
export REF_BIND="$SHARED:$NIXPKGS"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One run: "seconds user max_rss_kb" (or FAILED); stdout in $tmp/$1.out.
once() {
  local tag=$1; shift
  (cd "$tmp" && NIX_SHOW_STATS=1 /usr/bin/time -f '%e %U %M' -o "$tmp/t" "$@" >"$tmp/$tag.out" 2>"$tmp/$tag.err") \
    || { echo FAILED; return; }
  cat "$tmp/t"
}
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

configs=(cppnix nixvm)
for w in $(seq 2 "$MAXW"); do configs+=("nixvm-j$w"); done
cmd() {
  case $1 in
    cppnix) echo "$REF run nix-env -f $NIXPKGS -qaP" ;;
    nixvm) echo "$NIXVM env -f $NIXPKGS -qaP" ;;
    nixvm-j*) echo "$NIXVM env -f $NIXPKGS -qaP -j ${1#nixvm-j}" ;;
  esac
}
for c in "${configs[@]}"; do once "$c" $(cmd "$c") >/dev/null; done
declare -A wall user rss
for _ in $(seq "$RUNS"); do
  for c in "${configs[@]}"; do
    read -r t u m <<< "$(once "$c" $(cmd "$c"))"
    [ "$t" = FAILED ] && { echo "$c failed:"; tail -5 "$tmp/$c.err"; exit 1; }
    wall[$c]="${wall[$c]:-} $t"; user[$c]="${user[$c]:-} $u"; rss[$c]=$m
  done
done
ct=$(median ${wall[cppnix]})
printf '| command | wall | user | peak RSS | wall ratio | same lines |\n|---|---|---|---|---|---|\n'
for c in "${configs[@]}"; do
  t=$(median ${wall[$c]}) u=$(median ${user[$c]})
  mem="$(( ${rss[$c]} / 1024 )) MB"
  if [[ $c == nixvm-j* ]]; then
    mem=$(grep -o 'peak RSS each: .*' "$tmp/$c.err" | sed 's/peak RSS each: //; s/; peak total (sampled every 0.1 s): / each, total /')
  fi
  same=$(cmp -s "$tmp/cppnix.out" "$tmp/$c.out" && echo yes || echo NO)
  printf '| %s | %.1f s | %.1f s | %s | %.2f | %s |\n' "$(cmd "$c" | sed "s#$NIXPKGS#NIXPKGS#; s#$REF run ##; s#$NIXVM#nixvm#")" \
    "$t" "$u" "$mem" "$(echo "$t / $ct" | bc -l)" "$same"
done
