#!/usr/bin/env bash
# `silo verify --deep` over every .crate of a large registry, against `gzip -dc` of the same files
# to /dev/null, side by side in one hyperfine run; and the default (fast) mode's time beside them.
# --deep decompresses each .crate once and compares every member with the extracted file, so it
# does gzip's work plus reading the extracted tree; target <= 1.3x of gzip at the median.
# Usage: bench/verify.sh [CRATES] (default 400)   (prints a markdown section for BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
crates=${1:-400}
runs=${RUNS:-10}
swift build -c release --static-swift-stdlib -q >&2
silo=$PWD/.build/release/silo
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
home=$tmp/home
python3 bench/gen-registry.py "$home" --crates "$crates" >&2
"$silo" verify --cargo-home "$home" --deep >/dev/null   # healthy, or the comparison is meaningless
files=$(find "$home/registry/cache" -name '*.crate' | wc -l)
bytes=$(du -sb "$home/registry/cache" | cut -f1)

hyperfine -N --warmup 2 --runs "$runs" --export-json "$tmp/result.json" \
    --command-name 'gzip -dc' "sh -c 'gzip -dc $home/registry/cache/*/*.crate >/dev/null'" \
    --command-name 'silo verify --deep' "$silo verify --cargo-home $home --deep" \
    --command-name 'silo verify' "$silo verify --cargo-home $home" >&2

python3 - "$tmp/result.json" "$files" "$bytes" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ms = lambda s: f"{s * 1000:.0f} ms"
print(f"{sys.argv[2]} .crate files, {int(sys.argv[3]) / 2**20:.1f} MiB compressed, each also extracted beside its archive.\n")
print("| command | median | mean ± σ | min | max |")
print("|---|---|---|---|---|")
for name in ("gzip -dc", "silo verify --deep", "silo verify"):
    x = r[name]
    print(f"| `{name}` | {ms(x['median'])} | {ms(x['mean'])} ± {ms(x['stddev'])} | {ms(x['min'])} | {ms(x['max'])} |")
ratio = r["silo verify --deep"]["median"] / r["gzip -dc"]["median"]
print(f"\n`--deep` / `gzip -dc` at the median: **{ratio:.2f}x** (target <= 1.3x: {'met' if ratio <= 1.3 else 'NOT met'}); "
      f"the default mode takes {ms(r['silo verify']['median'])}.")
PY
