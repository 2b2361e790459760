#!/usr/bin/env bash
# Record CppNix's answers for the generated programs of SEED: writes
# seed-SEED.jsonl in tests/difftest/corpus (or $OUT), one {"src", "stdout" |
# "error"} per line, with ../shared/tools/reference-nix.sh (CppNix 2.34 in its
# chroot). A fresh run against the reference is
#   OUT=/tmp/live tests/difftest/record.sh SEED COUNT && target/release/difftest check /tmp/live/*.jsonl
set -euo pipefail
cd "$(dirname "$0")/../.."
SEED=${1:?SEED} COUNT=${2:?COUNT}
REF=$(cd ../shared/tools && pwd)/reference-nix.sh
cargo build -q --release -p nixvm-tests --bin difftest
dir=${OUT:-tests/difftest/corpus}
mkdir -p "$dir"
out=$dir/seed-$SEED.jsonl
target/release/difftest gen "$SEED" "$COUNT" > "$out.src"
python3 - "$REF" "$out.src" "$out" <<'PY'
import json, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
ref, src, out = sys.argv[1:]
cases = [json.loads(l) for l in open(src)]
def answer(s):
    try:
        p = subprocess.run([ref, "run", "nix-instantiate", "--eval", "--strict", "-E", s],
                           capture_output=True, cwd="/tmp", timeout=60)
    except subprocess.TimeoutExpired:
        # A program the generator should not have made; recorded so it is seen.
        return {"src": s, "error": "<timed out after 60 s>"}
    if p.returncode == 0:
        return {"src": s, "stdout": p.stdout.decode("utf-8", "replace")}
    err = [l.strip()[7:] for l in p.stderr.decode("utf-8", "replace").splitlines()
           if l.strip().startswith("error: ")]
    return {"src": s, "error": err[-1] if err else ""}
with ThreadPoolExecutor(2) as ex:
    rows = list(ex.map(answer, cases))
with open(out, "w") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
PY
rm -f "$out.src"
echo "$out: $(wc -l < "$out") cases"
