#!/bin/sh
# The daemon tests once more, against the reference CppNix 2.34's nix-daemon
# instead of the host's (CI has only Debian's Nix 2.8). Needs
# `../shared/tools/reference-nix.sh install` and root (the chroot).
#   tests/daemon/against-2.34.sh [CARGO TEST ARGS]
# Known limitation of the set-up, not of the protocol: a 2.34 daemon inside
# the reference chroot cannot sandbox its builds (no nested namespaces), so
# its builders find no /nix/store and the tests that build fail there.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export NIXVM_TEST_NIX_DAEMON="$here/nix-daemon-2.34" NIXVM_REQUIRE_DAEMON=1
cd "$here/../.."
status=0
cargo test --release -p nixvm-store --test daemon "$@" || status=1
cargo test --release -p nixvm-cli --test daemon_store "$@" || status=1
exit $status
