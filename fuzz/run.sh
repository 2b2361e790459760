#!/usr/bin/env bash
# Build a fuzz target with libFuzzer's coverage instrumentation on the
# stable toolchain and run it: fuzz/run.sh TARGET [SECONDS] [libFuzzer flags…]
# TARGET is parse, data or eval. The corpus grows in fuzz/corpus/TARGET (not
# committed); crashes land in fuzz/artifacts/TARGET and the run exits non-zero.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh parse|data|eval [SECONDS] [libFuzzer flags...]}
secs=${2:-60}
shift $(( $# >= 2 ? 2 : 1 ))
# The flags cargo-fuzz passes, minus the sanitizer (which needs nightly).
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-target}
# An explicit --target keeps the flags off build scripts and proc macros,
# which are not linked against libFuzzer.
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --target "$host" --bin "$target"
mkdir -p "corpus/$target" "artifacts/$target"
seeds=("seeds/$target")
# CppNix's language suite (beside the checkout, never copied in) seeds the
# program targets with every construct the language has.
lang=../../shared/conformance/nix-lang/lang
if [ "$target" != data ] && [ -d "$lang" ]; then seeds+=("$lang"); fi
exec "$CARGO_TARGET_DIR/$host/release/$target" -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 \
  -artifact_prefix="artifacts/$target/" "$@" "corpus/$target" "${seeds[@]}"
