#!/usr/bin/env bash
# Deleting and measuring caches, side by side with the tools an operator would use instead, one
# hyperfine run each, on a generated root of 8 caches shaped like real cargo homes and target dirs
# (bench/gen-cargo-tree.py: >= 200k files, ~3 GiB):
#   deletion:  `silo reap --max-age 0 --min-free 0` on a root  against  `rm -rf` of an identical copy
#              (a fresh `cp -a` of one master tree before every run, synced, for both commands)
#   size scan: `silo ls --size`  against  `du -s ROOT/caches`  (warm page cache: one warmup run each)
# Target: silo <= 1.0x of the baseline at the median, for each.
# Usage: RUNS=5 bench/reap.sh   (prints a markdown section for BENCHMARKS.md)
#   RUNS       timed runs per command (default 5)
#   BENCH_DIR  where the temporary trees go (default /tmp); needs ~4x the tree's bytes free
#   KEYS, SCALE, SEED   passed to bench/gen-cargo-tree.py (defaults 8, 1, 1)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
gen=(--keys "${KEYS:-8}" --scale "${SCALE:-1}" --seed "${SEED:-1}")

if ! command -v hyperfine >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then echo "reap.sh: hyperfine is missing; apt-get install hyperfine (as root)" >&2; exit 1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >&2
fi
swift build -c release --static-swift-stdlib -q >&2
silo=$PWD/.build/release/silo
if ! "$silo" reap --help >/dev/null 2>&1; then echo "reap.sh: $silo has no reap command" >&2; exit 1; fi

tmp=$(mktemp -d "${BENCH_DIR:-/tmp}/silo-reap-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
case $tmp in *[[:space:]\'\"]*) echo "reap.sh: BENCH_DIR must not contain spaces or quotes: $tmp" >&2; exit 1;; esac
master=$tmp/master copy_silo=$tmp/copy-silo copy_rm=$tmp/copy-rm

# Room for the master and two copies; allocated size runs ~25% over the files' bytes.
plan=$(python3 bench/gen-cargo-tree.py "$master" --dry-run "${gen[@]}")
bytes=$(awk '{for (i = 2; i <= NF; i++) if ($i == "bytes") print $(i - 1)}' <<<"$plan")
avail=$(( $(df -P -k "$tmp" | awk 'NR == 2 {print $4}') * 1024 ))
if (( avail < bytes * 4 )); then
    echo "reap.sh: $tmp has $((avail >> 20)) MiB free; the trees need about $((bytes * 4 >> 20)) MiB" >&2
    exit 1
fi

echo "reap.sh: generating the master tree in $master" >&2
start=$(date +%s.%N)
tree=$(python3 bench/gen-cargo-tree.py "$master" "${gen[@]}")
gen_seconds=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
echo "$tree" >&2
# The store exists before any copy is taken, so that every copy is the same root.
"$silo" --quiet --root "$master" ls >/dev/null
files=$(find "$master" -type f | wc -l)   # now with silo.db and whatever else `ls` made
allocated=$(du -s -B1 "$master" | cut -f1)

# Per-command --prepare: each command gets its own fresh copy before each run. Synced, so the
# copy's writeback is not charged to the next command.
fresh() { echo "bash -c 'rm -rf $1 && cp -a --reflink=auto $master $1 && sync'"; }
hyperfine -N --runs "$runs" --export-json "$tmp/reap.json" \
    --prepare "$(fresh "$copy_silo")" --command-name 'silo reap --max-age 0 --min-free 0' \
        "$silo --root $copy_silo reap --max-age 0 --min-free 0" \
    --prepare "$(fresh "$copy_rm")" --command-name 'rm -rf' \
        "rm -rf $copy_rm" >&2
# Like for like only if reap really deleted the caches before it returned.
left=$(find "$copy_silo/caches" "$copy_silo/trash" -mindepth 1 2>/dev/null | wc -l)
rm -rf "$copy_silo" "$copy_rm"

hyperfine -N --warmup 1 --runs "$runs" --export-json "$tmp/scan.json" \
    --command-name 'silo ls --size' "$silo --root $master ls --size" \
    --command-name 'du -s caches' "du -s $master/caches" >&2
silo_bytes=$("$silo" --root "$master" ls --json | python3 -c 'import json, sys; print(sum(r["bytes"] or 0 for r in json.load(sys.stdin)))')
du_bytes=$(du -s -B1 "$master/caches" | cut -f1)

python3 - "$tmp" "$files" "$allocated" "$gen_seconds" "$left" "$silo_bytes" "$du_bytes" "${gen[*]}" <<'PY'
import json, sys
tmp, files, allocated, gen_seconds, left, silo_bytes, du_bytes, gen = sys.argv[1:]
gib = lambda b: f"{int(b) / 1024**3:.2f} GiB"
print(f"Tree: `bench/gen-cargo-tree.py {gen}`: {int(files):,} files, {gib(allocated)} allocated "
      f"(generated in {gen_seconds} s).")

def table(path, silo_name, base_name, title):
    r = {x["command"]: x for x in json.load(open(path))["results"]}
    silo, base = r[silo_name], r[base_name]
    unit, scale = ("s", 1) if base["median"] >= 1 else ("ms", 1000)
    t = lambda s: f"{s * scale:.2f} {unit}"
    print(f"\n{title}\n")
    print("| command | median | mean ± σ | min | max |")
    print("|---|---|---|---|---|")
    for name, x in ((base_name, base), (silo_name, silo)):
        print(f"| `{name}` | {t(x['median'])} | {t(x['mean'])} ± {t(x['stddev'])} | {t(x['min'])} | {t(x['max'])} |")
    ratio = silo["median"] / base["median"]
    print(f"\nsilo / baseline at the median: **{ratio:.2f}x** (target <= 1.0x: {'met' if ratio <= 1.0 else 'NOT met'}).")

table(f"{tmp}/reap.json", "silo reap --max-age 0 --min-free 0", "rm -rf",
      "Deletion (a fresh `cp -a` copy of the tree before each run, synced):")
if int(left):
    print(f"\n**Not like for like:** after reap returned, {int(left):,} entries were left under caches/ and trash/.")
table(f"{tmp}/scan.json", "silo ls --size", "du -s caches", "Size scan (warm page cache, one warmup run):")
print(f"\nMeasured: silo {int(silo_bytes):,} bytes over the caches, du {int(du_bytes):,} bytes for caches/ "
      f"(du also counts caches/ and caches/<key> themselves).")
PY
