#!/usr/bin/env bash
# Seeding a new key from a base, side by side with copying the same tree, in one hyperfine run:
#   silo exec --key K --user 1000 -- true   (a new key: hard links to the base for a runner uid,
#                                           the index and .global-cache copied; the job is `true`)
#   cp -a  BASE/home DEST                   (a full copy: what a cache per PR costs without silo)
#   cp -al BASE/home DEST                   (hard links for everything: the floor for linking)
# on the base's filesystem, the page cache warm, DEST removed before every run (not timed).
# On a loop-mounted XFS with reflink=1 the same again with silo's reflink path against
# `cp -a --reflink=always`, when mkfs.xfs is there.
# Then the disk of 45 keys seeded from the base (df before and after, and `silo du`) against 45
# copies (one `cp -a` copy's df delta times 45: copies share nothing).
# Targets: silo <= 0.1x `cp -a` and <= 1.0x `cp -al` at the median; 45 keys ~ one copy.
# Needs root (the seeding for another uid, the loop mount).
# Usage: RUNS=10 CRATES=2500 bench/seed.sh   (prints a markdown section for BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-10}
crates=${CRATES:-2500}
keys=${KEYS:-45}
[ "$(id -u)" -eq 0 ] || { echo "seed.sh: run as root (it seeds for uid 1000 and loop-mounts XFS)" >&2; exit 1; }
swift build -c release --static-swift-stdlib -q >&2
silo=$PWD/.build/release/silo
tmp=$(mktemp -d "${BENCH_DIR:-/var/tmp}/silo-seed-bench.XXXXXX")
xfs=
cleanup() { [ -n "$xfs" ] && umount -l "$xfs" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# A base made the way a fleet makes one: a trusted key's home, promoted.
root=$tmp/root
echo "seed.sh: generating $crates crates" >&2
python3 bench/gen-registry.py "$tmp/gen" --crates "$crates" >&2
"$silo" --root "$root" --quiet exec --key main --no-target -- sh -c "cp -a $tmp/gen/. \$CARGO_HOME/"
"$silo" --root "$root" --quiet promote --key main >&2
base=$root/bases/default/1/home
files=$(find "$base" -type f | wc -l)
bytes=$(du -sb "$base" | cut -f1)

bench() { # label root base dest extra-hyperfine-args...   (dest on the base's filesystem)
    local label=$1 r=$2 b=$3 d=$4; shift 4
    hyperfine -N --warmup 2 --runs "$runs" --export-json "$tmp/$label.json" \
        --prepare "rm -rf $r/caches/seed $d" \
        --command-name 'silo exec (new key)' "$silo --root $r --quiet exec --key seed --user 1000 -- true" \
        --command-name 'cp -a' "cp -a $b $d" \
        --command-name 'cp -al' "cp -al $b $d" \
        "$@" >&2
}
bench ext4 "$root" "$base" "$tmp/dest"
method_ext4=$("$silo" --root "$root" exec --key seed-check --user 1000 -- true 2>&1 | sed -n 's/.* by \([a-z]*\):.*/\1/p')

if command -v mkfs.xfs >/dev/null; then
    truncate -s $(( bytes * 4 + (1 << 30) )) "$tmp/xfs.img"
    mkfs.xfs -q -m reflink=1 "$tmp/xfs.img"
    mkdir "$tmp/xfs" && mount -o loop "$tmp/xfs.img" "$tmp/xfs" && xfs=$tmp/xfs
    xroot=$xfs/root
    "$silo" --root "$xroot" --quiet exec --key main --no-target -- sh -c "cp -a $tmp/gen/. \$CARGO_HOME/"
    "$silo" --root "$xroot" --quiet promote --key main >&2
    bench xfs "$xroot" "$xroot/bases/default/1/home" "$xfs/dest" \
        --command-name 'cp -a --reflink=always' "cp -a --reflink=always $xroot/bases/default/1/home $xfs/dest"
    mv "$tmp/xfs.json" "$tmp/xfs-result.json"
fi

# Disk: 45 seeded keys against 45 copies.
sync; used() { df -B1 --output=used "$1" | tail -1; }
before=$(used "$root")
for i in $(seq "$keys"); do "$silo" --root "$root" --quiet exec --key "pr-$i" --user 1000 -- true; done
sync; after=$(used "$root")
"$silo" --root "$root" du --json >"$tmp/du.json"
before_copy=$(used "$tmp"); cp -a "$base" "$tmp/one-copy"; sync; after_copy=$(used "$tmp")

python3 - "$tmp" "$files" "$bytes" "$crates" "$method_ext4" "$keys" "$before" "$after" "$before_copy" "$after_copy" <<'PY'
import json, os, sys
tmp, files, nbytes, crates, method, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
before, after, before_copy, after_copy = map(int, sys.argv[7:11])
ms = lambda s: f"{s * 1000:.0f} ms"
mib = lambda b: f"{b / 2**20:,.0f} MiB"
def table(path, names):
    r = {x["command"]: x for x in json.load(open(path))["results"]}
    print("| command | median | mean ± σ | min | max |")
    print("|---|---|---|---|---|")
    for n in names:
        if n in r:
            x = r[n]
            print(f"| `{n}` | {ms(x['median'])} | {ms(x['mean'])} ± {ms(x['stddev'])} | {ms(x['min'])} | {ms(x['max'])} |")
    return r
print(f"Base: {crates} crates, {files:,} files, {mib(nbytes)} (registry cache, sources, index cache entries).\n")
print(f"ext4 (silo seeds by **{method}** for uid 1000):\n")
r = table(os.path.join(tmp, "ext4.json"), ["silo exec (new key)", "cp -a", "cp -al"])
s = r["silo exec (new key)"]["median"]
a, al = s / r["cp -a"]["median"], s / r["cp -al"]["median"]
print(f"\nsilo / `cp -a`: **{a:.3f}x** (target <= 0.1x: {'met' if a <= 0.1 else 'NOT met'}); "
      f"silo / `cp -al`: **{al:.2f}x** (target <= 1.0x: {'met' if al <= 1.0 else 'NOT met'}).\n")
xp = os.path.join(tmp, "xfs-result.json")
if os.path.exists(xp):
    print("XFS with reflink=1 (silo seeds by reflink, whoever the job runs as):\n")
    r = table(xp, ["silo exec (new key)", "cp -a --reflink=always", "cp -a", "cp -al"])
    s = r["silo exec (new key)"]["median"]
    print(f"\nsilo / `cp -a --reflink=always`: **{s / r['cp -a --reflink=always']['median']:.2f}x**; silo / `cp -a`: **{s / r['cp -a']['median']:.3f}x**.\n")
du = json.load(open(os.path.join(tmp, "du.json")))
one = after_copy - before_copy
print(f"Disk of {keys} keys seeded from the base (df, ext4): **{mib(after - before)}** for all {keys}, against "
      f"{keys} copies at {mib(one)} each = **{mib(one * keys)}** ({(after - before) / (one * keys):.3f}x). "
      f"`silo du`: {mib(du['disk_bytes'])} on disk for the root (base included), caches {mib(du['caches']['apparent_bytes'])} apparent, "
      f"{mib(du['caches']['unique_bytes'])} unique.")
PY
