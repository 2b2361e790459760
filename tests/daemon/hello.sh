#!/bin/bash
# nixpkgs' hello instantiated through a private nix-daemon, Debian's Nix 2.8
# and the reference CppNix 2.34's, compared with CppNix 2.34 instantiating it
# in its own store: the drvPath, the closure's validity in the daemon's store
# (its nix-store -q --requisites) and every file of it, byte for byte; and
# the time against our chroot store.
#   tests/daemon/hello.sh NIXPKGS
# Needs ../shared/tools/reference-nix.sh install and root.
set -euo pipefail
nixpkgs=$(cd "${1:?usage: hello.sh NIXPKGS}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
repo=$here/../..
ref=$repo/../shared/tools/reference-nix.sh
nixvm=$repo/target/release/nixvm
REF_STATE=${REF_STATE:-/var/lib/nixvm-reference/state}
cd /tmp
want=$(REF_BIND=$nixpkgs "$ref" run nix-instantiate "$nixpkgs" -A hello 2>/dev/null)
echo "CppNix 2.34: $want"
for daemon in nix-daemon "$here/nix-daemon-2.34"; do
  dir=$(mktemp -d /tmp/nixvm-hello-XXXX)
  mkdir -p "$dir/conf"
  printf 'build-users-group =\nsubstituters =\nsandbox = false\n' > "$dir/conf/nix.conf"
  NIX_CONF_DIR=$dir/conf NIX_DAEMON_SOCKET_PATH=$dir/socket setsid "$daemon" --store "local?root=$dir/root" >/dev/null 2>&1 < /dev/null &
  pid=$!
  for _ in $(seq 100); do [ -S "$dir/socket" ] && break; sleep 0.1; done
  uri="unix://$dir/socket?root=$dir/root"
  start=$(date +%s.%N)
  got=$("$nixvm" instantiate --store "$uri" "$nixpkgs" -A hello 2>/dev/null)
  t_daemon=$(echo "$(date +%s.%N) - $start" | bc)
  rm -rf "$dir/chroot"
  start=$(date +%s.%N)
  "$nixvm" instantiate --store "$dir/chroot" "$nixpkgs" -A hello >/dev/null 2>&1
  t_local=$(echo "$(date +%s.%N) - $start" | bc)
  n=0; bad=0
  for p in $(NIX_CONF_DIR=$dir/conf NIX_DAEMON_SOCKET_PATH=$dir/socket nix-store --store daemon -q --requisites "$got"); do
    n=$((n+1))
    diff -r "$dir/root$p" "$REF_STATE/new$p" >/dev/null 2>&1 || { bad=$((bad+1)); echo "  differs: $p"; }
  done
  echo "$(basename "$daemon"): $got ($([ "$got" = "$want" ] && echo same || echo DIFFERENT)); $n paths valid, $bad differ; daemon ${t_daemon}s, chroot store ${t_local}s"
  kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
  chmod -R u+w "$dir" 2>/dev/null; rm -rf "$dir"
done
