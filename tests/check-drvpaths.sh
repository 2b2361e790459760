#!/usr/bin/env bash
# Re-check tests/fixtures/drvpaths.json (drvPath/outPath of our own derivations) against the
# reference CppNix (../shared/tools/reference-nix.sh) and against nixvm.
#
#   tests/check-drvpaths.sh           compare reference, fixture and nixvm; exit 1 on any difference
#   tests/check-drvpaths.sh --update  rewrite the fixture from the reference's answers
#
# The test suite (tests/tests/drvpaths.rs) compares nixvm with the fixture only, so neither it
# nor CI needs the reference binary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
ref=${REF_NIX:-$root/../shared/tools/reference-nix.sh}
nixvm=${NIXVM:-$root/target/release/nixvm}
fixture=$here/fixtures/drvpaths.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$here/fixtures"
# Read-only evaluation, as nix-instantiate --eval: nothing is written to either store.
"$ref" run nix-instantiate --eval --strict --json drvpaths.nix | python3 -m json.tool --sort-keys > "$tmp/ref.json"
"$nixvm" eval --strict --json drvpaths.nix | python3 -m json.tool --sort-keys > "$tmp/nixvm.json"
if [ "${1:-}" = "--update" ]; then
  cp "$tmp/ref.json" "$fixture"
  echo "updated $fixture"
fi
status=0
diff -u "$fixture" "$tmp/ref.json" >&2 || { echo "fixture differs from the reference" >&2; status=1; }
diff -u "$tmp/ref.json" "$tmp/nixvm.json" >&2 || { echo "nixvm differs from the reference" >&2; status=1; }
[ $status = 0 ] && echo "drvpaths: reference, fixture and nixvm agree ($(grep -c drvPath "$fixture") derivations)"
exit $status
