#!/usr/bin/env bash
# What `silo exec` adds to a job on a warm key: `silo exec --key k -- true` against plain `true`,
# side by side in one hyperfine run. Target: <= 5 ms added at the median.
# Usage: bench/exec-overhead.sh [RUNS]   (prints a markdown table for BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-300}
swift build -c release --static-swift-stdlib -q >&2
silo=$PWD/.build/release/silo
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
"$silo" --root "$root" exec --key k -- true   # warm the key: the cache and the store exist

# -N: no intermediate shell, so both commands are measured the same way.
hyperfine -N --warmup 30 --runs "$runs" --export-json "$tmp/result.json" \
    --command-name 'true' 'true' \
    --command-name 'silo exec --key k -- true' "$silo --root $root exec --key k -- true" >&2

python3 - "$tmp/result.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
base, silo = r["true"], r["silo exec --key k -- true"]
ms = lambda s: f"{s * 1000:.2f} ms"
print("| command | median | mean ± σ | min | max |")
print("|---|---|---|---|---|")
for name, x in (("true", base), ("silo exec --key k -- true", silo)):
    print(f"| `{name}` | {ms(x['median'])} | {ms(x['mean'])} ± {ms(x['stddev'])} | {ms(x['min'])} | {ms(x['max'])} |")
added = silo["median"] - base["median"]
print(f"\nAdded at the median: **{ms(added)}** (target <= 5 ms: {'met' if added <= 0.005 else 'NOT met'}).")
PY
