#!/usr/bin/env bash
# CppNix's language suite (../shared/conformance) on the release nixvm, at LEVEL (output or
# strict, see run-nix-lang.sh --help), on a copy of the corpus whose symlinks are restored as
# the corpus README lists them. A copy that stores them as plain files holding their targets
# (as ../shared's may) fails six cases for that alone; `tests/symlink_cases.rs` checks them.
#   tests/conformance.sh [LEVEL] [RUNNER-OPTION...]     e.g. tests/conformance.sh strict -o /tmp/log
set -euo pipefail
cd "$(dirname "$0")/.."
LEVEL=${1:-output}
shift || true
SHARED=$(cd ../shared && pwd)
NIXVM=${NIXVM:-$PWD/target/release/nixvm}
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
cp -r "$SHARED/conformance/nix-lang" "$tmp/nix-lang"
chmod -R u+w "$tmp/nix-lang"
lang="$tmp/nix-lang/lang"
# (link, target) relative to lang/, from the corpus README.
for pair in readDir/ldir:foo readDir/linked:foo/git-hates-directories \
            symlink-resolution/broken:nonexistent symlink-resolution/foo/overlays:../overlays; do
  link=${pair%%:*} target=${pair#*:}
  rm -rf "${lang:?}/$link"
  ln -s "$target" "$lang/$link"
done
# The empty file that keeps readDir/foo in git upstream (an empty file a copy may drop).
[ -e "$lang/readDir/foo/git-hates-directories" ] || : > "$lang/readDir/foo/git-hates-directories"
"$SHARED/conformance/run-nix-lang.sh" --corpus "$tmp/nix-lang" -l "$LEVEL" -j 2 "$@" -- "$NIXVM" instantiate
