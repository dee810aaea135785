#!/usr/bin/env python3
"""Generate a silo root full of caches shaped like real cargo homes and target dirs.

The tree is a benchmark input for `silo reap` and `silo ls --size`: many small files in nested
directories (registry sources, fingerprints, incremental objects), some larger ones (.crate
archives, rlibs, build-script and test binaries), and hard links where cargo makes them.

    ROOT/LAYOUT                                   "silo-layout 1"
    ROOT/caches/<key>/1/.silo-cache               {"key":...,"slot":1,"layout":1}
    ROOT/caches/<key>/1/home/                     CARGO_HOME: .package-cache, registry/{index/.cache,cache,src}
    ROOT/caches/<key>/1/target/                   CARGO_TARGET_DIR: debug/{deps,build,.fingerprint,incremental}
    ROOT/locks/, ROOT/trash/                      empty

The structure (every path and every size) is a function of --seed, --keys and --scale alone;
contents are slices of a seeded random pool. Keys are generated in parallel, one process per key.
"""

import argparse
import hashlib
import math
import os
import random
import sys
import time
from multiprocessing import Pool

REGISTRY = "127.0.0.1-0123456789abcdef"
KB = 1024
MB = 1024 * KB
POOL_BYTES = 4 * MB  # larger than the largest file (2 MiB)

# Real crate names first, so the tree reads like a real one; synthetic names fill the rest.
REAL_CRATES = """
serde serde_json serde_derive syn quote proc-macro2 unicode-ident tokio tokio-macros mio bytes
futures futures-core futures-util futures-io futures-sink futures-task futures-channel
futures-macro pin-project-lite pin-utils slab memchr libc cfg-if log tracing tracing-core
tracing-attributes tracing-subscriber once_cell lazy_static regex regex-syntax regex-automata
aho-corasick itoa ryu hashbrown indexmap equivalent ahash smallvec either itertools rand
rand_core rand_chacha getrandom ppv-lite86 clap clap_builder clap_derive clap_lex anstream
anstyle anstyle-parse anstyle-query strsim heck thiserror thiserror-impl anyhow bitflags
byteorder num-traits num-integer autocfg chrono time time-core time-macros deranged iana-time-zone
http http-body httparse hyper hyper-util h2 tower tower-service tower-layer reqwest url idna
percent-encoding form_urlencoded unicode-bidi unicode-normalization tinyvec tinyvec_macros
encoding_rs mime base64 sha2 sha1 digest block-buffer generic-array typenum crypto-common
cpufeatures hex ring rustls rustls-pemfile rustls-webpki untrusted webpki-roots socket2 parking_lot
parking_lot_core lock_api scopeguard crossbeam-utils crossbeam-channel crossbeam-epoch
crossbeam-deque rayon rayon-core num_cpus windows-sys windows-targets windows_x86_64_gnu
winapi semver toml toml_edit toml_datetime serde_spanned winnow walkdir same-file tempfile
fastrand rustix linux-raw-sys errno cc jobserver pkg-config libz-sys flate2 miniz_oxide adler
crc32fast zstd zstd-sys zstd-safe bzip2 bzip2-sys openssl openssl-sys openssl-macros
foreign-types native-tls schannel security-framework colorchoice utf8parse dashmap arc-swap
async-trait axum axum-core matchit sync_wrapper tokio-util tokio-stream tokio-rustls hyper-rustls
want try-lock httpdate nom minimal-lexical glob ignore globset bstr termcolor env_logger humantime
atty is-terminal memoffset static_assertions prost prost-derive tonic tonic-build bincode
""".split()

SYLLABLES = ("ab ac ad al an ar as at ba be bi bo ca ce ci co da de di do el en er es et fa fe fi fo "
             "ga ge gi go ha he hi ho il in io ir is it ka ke ki ko la le li lo ma me mi mo na ne "
             "ni no ol on or os pa pe pi po ra re ri ro sa se si so ta te ti to ul un ur us va ve "
             "vi vo xa xe za ze zi zo").split()
SUFFIXES = ["", "", "", "", "-core", "-derive", "-macros", "-sys", "-util", "_impl", "-types", "-rt"]
MODULES = ("error util utils types parse parser de ser value map set iter buf read write io net fs "
           "sync task time macros impls traits config builder client server codec frame stream "
           "proto raw ffi sys unix windows os alloc fmt hash cmp ops num str string vec slice "
           "tests bench internal private common core helpers state conn pool runtime").split()
RUST_WORDS = ("fn pub struct impl enum let mut match if else for while loop return use mod self Self "
              "where trait type const static unsafe async await move ref as in crate super dyn "
              "Option Some None Result Ok Err Vec String Box Arc Rc usize u8 u32 u64 i32 i64 bool "
              "&self &mut -> => :: { } ( ) < > ; , . = == != + - * / // /// #[derive(Debug)] "
              "#[inline] value buf len idx inner state self.inner self.len").split()


def log_uniform(rng, lo, hi):
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def log_tri(rng, lo, hi, mode):
    """Sizes skewed toward `mode`, log-triangular on [lo, hi]."""
    return int(math.exp(rng.triangular(math.log(lo), math.log(hi), math.log(mode))))


def index_dir(name):
    """Cargo's index layout: 1/, 2/, 3/<first letter>/, else <first two>/<next two>/."""
    if len(name) <= 2:
        return str(len(name))
    if len(name) == 3:
        return f"3/{name[0]}"
    return f"{name[0:2]}/{name[2:4]}"


def hexhash(*parts, n=16):
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=n // 2).hexdigest()


class Crate:
    __slots__ = ("name", "version", "kind", "build_script", "crate_bytes", "index_bytes", "src",
                 "out_files", "rlib_bytes")


def make_universe(seed, scale):
    """Every registry crate any key may depend on: name, version, source tree, artifact sizes."""
    rng = random.Random(f"{seed}:universe")
    count = max(20, round(420 * scale))
    names, seen = [], set()
    for n in REAL_CRATES:
        if len(names) >= count:
            break
        names.append(n)
        seen.add(n)
    while len(names) < count:
        n = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) + rng.choice(SUFFIXES)
        if len(n.replace("-", "").replace("_", "")) >= 4 and n not in seen:
            seen.add(n)
            names.append(n)
    crates = []
    for name in names:
        versions = 2 if rng.random() < 0.08 else 1  # e.g. syn 1.x and 2.x in one graph
        for v in range(versions):
            c = Crate()
            c.name = name
            c.version = f"{rng.choice([0, 0, 0, 1, 1, 2])}.{rng.randint(0, 40)}.{rng.randint(0, 30)}" + ("" if v == 0 else f"-{v}")
            c.kind = "proc-macro" if name.endswith(("-derive", "-macros", "_derive", "-macro")) or rng.random() < 0.04 else "lib"
            c.build_script = name.endswith("-sys") or rng.random() < 0.18
            c.crate_bytes = log_uniform(rng, 10 * KB, 200 * KB)
            c.index_bytes = log_tri(rng, 300, 48 * KB, 2 * KB)
            c.src = make_src_tree(rng, c)
            c.out_files = make_build_out(rng, c) if c.build_script else []
            c.rlib_bytes = log_tri(rng, 6 * KB, 2 * MB, 16 * KB)
            crates.append(c)
    return crates


def make_src_tree(rng, c):
    """(relative path, size) of an unpacked crate: metadata files, src/**/*.rs, tests, examples."""
    files = [("Cargo.toml", log_tri(rng, 400, 6 * KB, 1500)), ("Cargo.toml.orig", log_tri(rng, 300, 5 * KB, 1200)),
             (".cargo_vcs_info.json", rng.randint(90, 130)), ("README.md", log_tri(rng, 200, 30 * KB, 3 * KB))]
    for lic in rng.sample(["LICENSE-MIT", "LICENSE-APACHE", "LICENSE", "COPYRIGHT"], rng.randint(0, 2)):
        files.append((lic, 1100 if lic.endswith("MIT") else rng.randint(9 * KB, 11 * KB)))
    if rng.random() < 0.5:
        files.append(("CHANGELOG.md", log_tri(rng, 500, 40 * KB, 6 * KB)))
    if c.build_script:
        files.append(("build.rs", log_tri(rng, 300, 20 * KB, 2 * KB)))
    files.append(("src/lib.rs", log_tri(rng, 500, 40 * KB, 6 * KB)))
    # Heavy-tailed file count: most crates are small, a few are huge (windows-sys, syn, tokio).
    n = min(900, int(rng.paretovariate(1.25) * 12))
    dirs = [("src", 1)]
    for top in ("tests", "benches", "examples"):
        if rng.random() < 0.3:
            dirs.append((top, 1))
    used = {p for p, _ in files}
    for _ in range(n):
        if rng.random() < 0.12:
            parent, depth = rng.choice(dirs)
            if depth < 6:
                dirs.append((f"{parent}/{rng.choice(MODULES)}{rng.randint(0, 9) if rng.random() < 0.3 else ''}", depth + 1))
        d, _ = rng.choice(dirs)
        for _ in range(5):
            p = f"{d}/{rng.choice(MODULES)}{'_' + rng.choice(MODULES) if rng.random() < 0.5 else ''}.rs"
            if p not in used:
                break
        else:
            p = f"{d}/m{len(used)}.rs"
        used.add(p)
        files.append((p, log_tri(rng, 200, 40 * KB, 2000)))
    return files


def make_build_out(rng, c):
    """What a build script leaves in OUT_DIR: generated Rust, or compiled C objects and a static lib."""
    out = []
    if c.name.endswith("-sys") or rng.random() < 0.2:
        for i in range(rng.randint(4, 40)):
            out.append((f"out/{hexhash(c.name, i, n=16)}-{rng.choice(MODULES)}.o", log_tri(rng, 1 * KB, 120 * KB, 6 * KB)))
        out.append((f"out/lib{c.name.replace('-', '_')}.a", log_tri(rng, 100 * KB, 2 * MB, 150 * KB)))
        if rng.random() < 0.5:
            out.append(("out/include/" + c.name.replace("-", "_") + ".h", log_tri(rng, 500, 40 * KB, 4 * KB)))
    else:
        for i in range(rng.randint(1, 4)):
            out.append((f"out/{rng.choice(MODULES)}{i}.rs", log_tri(rng, 300, 200 * KB, 8 * KB)))
    return out


def plan_key(seed, scale, key, universe):
    """Yields ('d', path) for directories and ('f', path, size, text) / ('l', path, target) for files."""
    rng = random.Random(f"{seed}:key:{key}")
    slot = f"caches/{key}/1"
    yield ("d", slot)
    yield ("f", f"{slot}/.silo-cache", f'{{"key":"{key}","slot":1,"layout":1}}\n', True)

    # CARGO_HOME
    home = f"{slot}/home"
    yield ("d", home)
    yield ("f", f"{home}/.package-cache", 0, False)
    yield ("f", f"{home}/.package-cache-mutate", 0, False)
    yield ("d", f"{home}/git")
    yield ("f", f"{home}/.global-cache", log_uniform(rng, 40 * KB, 400 * KB), False)
    deps = [c for c in universe if rng.random() < 0.88]  # PRs of one project share most of their graph
    reg = f"{home}/registry"
    indexed = set()
    for c in deps:
        lname = c.name.lower()
        if lname not in indexed:
            indexed.add(lname)
            d = f"{reg}/index/{REGISTRY}/.cache/{index_dir(lname)}"
            yield ("d", d)
            yield ("f", f"{d}/{lname}", c.index_bytes, False)
        yield ("d", f"{reg}/cache/{REGISTRY}")
        yield ("f", f"{reg}/cache/{REGISTRY}/{c.name}-{c.version}.crate", c.crate_bytes, False)
        src = f"{reg}/src/{REGISTRY}/{c.name}-{c.version}"
        yield ("d", src)
        yield ("f", f"{src}/.cargo-ok", '{"v":1}', True)
        for p, size in c.src:
            if "/" in p:
                yield ("d", f"{src}/{p.rsplit('/', 1)[0]}")
            yield ("f", f"{src}/{p}", size, True)

    # CARGO_TARGET_DIR
    target = f"{slot}/target"
    debug = f"{target}/debug"
    for d in ("deps", "build", ".fingerprint", "incremental", "examples"):
        yield ("d", f"{debug}/{d}")
    yield ("f", f"{target}/CACHEDIR.TAG", 177, True)
    yield ("f", f"{target}/.rustc_info.json", rng.randint(900, 1400), True)
    yield ("f", f"{debug}/.cargo-lock", 0, False)

    def fingerprint(unit, h, label):
        fp = f"{debug}/.fingerprint/{unit}-{h}"
        yield ("d", fp)
        yield ("f", f"{fp}/invoked.timestamp", 48, True)
        yield ("f", f"{fp}/{label}", 16, True)
        yield ("f", f"{fp}/{label}.json", rng.randint(300, 2500), True)
        yield ("f", f"{fp}/dep-{label}", rng.randint(16, 4 * KB), False)

    for c in deps:
        ident = c.name.replace("-", "_")
        # A dependency is sometimes built twice: another feature set, or build-dependency vs normal.
        for build in range(2 if rng.random() < 0.2 else 1):
            h = hexhash(seed, key, c.name, c.version, build)
            yield from fingerprint(c.name, h, f"lib-{ident}")
            if c.kind == "proc-macro":
                yield ("f", f"{debug}/deps/lib{ident}-{h}.so", log_tri(rng, 100 * KB, 2 * MB, 300 * KB), False)
            else:
                yield ("f", f"{debug}/deps/lib{ident}-{h}.rlib", c.rlib_bytes, False)
                yield ("f", f"{debug}/deps/lib{ident}-{h}.rmeta", max(4 * KB, c.rlib_bytes // rng.randint(2, 5)), False)
            yield ("f", f"{debug}/deps/{ident}-{h}.d", log_tri(rng, 300, 60 * KB, 3 * KB), True)
            if c.build_script and build == 0:
                hb, hr = hexhash(seed, key, c.name, c.version, "build-script"), hexhash(seed, key, c.name, c.version, "run")
                b = f"{debug}/build/{c.name}-{hb}"
                yield ("d", b)
                exe = log_tri(rng, 100 * KB, 2 * MB, 150 * KB)
                yield ("f", f"{b}/build_script_build-{hb}", exe, False)
                yield ("l", f"{b}/build-script-build", f"{b}/build_script_build-{hb}")
                yield ("f", f"{b}/build_script_build-{hb}.d", log_tri(rng, 200, 8 * KB, 600), True)
                r = f"{debug}/build/{c.name}-{hr}"
                yield ("d", f"{r}/out")
                yield ("f", f"{r}/invoked.timestamp", 48, True)
                yield ("f", f"{r}/output", log_tri(rng, 20, 12 * KB, 300), True)
                yield ("f", f"{r}/root-output", len(r) + 6, True)
                yield ("f", f"{r}/stderr", 0 if rng.random() < 0.8 else rng.randint(50, 4 * KB), True)
                for p, size in c.out_files:
                    if p.count("/") > 1:
                        yield ("d", f"{r}/{p.rsplit('/', 1)[0]}")
                    yield ("f", f"{r}/{p}", size, p.endswith((".rs", ".h")))
                yield from fingerprint(c.name, hb, "build-script-build-script-build")
                yield from fingerprint(c.name, hr, "run-build-script-build-script-build")

    # The workspace's own crates: libraries, binaries and test executables, with incremental state.
    members = max(2, round(6 * scale))
    for i in range(members):
        name = f"app-{rng.choice(MODULES)}-{i}"
        ident = name.replace("-", "_")
        h = hexhash(seed, key, name)
        yield from fingerprint(name, h, f"lib-{ident}")
        rlib = log_uniform(rng, 200 * KB, 2 * MB)
        yield ("f", f"{debug}/deps/lib{ident}-{h}.rlib", rlib, False)
        yield ("f", f"{debug}/deps/lib{ident}-{h}.rmeta", rlib // 3, False)
        yield ("f", f"{debug}/deps/{ident}-{h}.d", log_tri(rng, 1 * KB, 40 * KB, 6 * KB), True)
        yield ("l", f"{debug}/lib{ident}.rlib", f"{debug}/deps/lib{ident}-{h}.rlib")
        yield ("f", f"{debug}/lib{ident}.d", log_tri(rng, 1 * KB, 40 * KB, 6 * KB), True)
        ht = hexhash(seed, key, name, "test")
        yield ("f", f"{debug}/deps/{ident}-{ht}", log_uniform(rng, 800 * KB, 2 * MB), False)
        yield ("f", f"{debug}/deps/{ident}-{ht}.d", log_tri(rng, 1 * KB, 40 * KB, 6 * KB), True)
        yield from fingerprint(name, ht, f"test-lib-{ident}")
        if i == 0:
            hbin = hexhash(seed, key, name, "bin")
            yield ("f", f"{debug}/deps/{ident}-{hbin}", 2 * MB, False)
            yield ("l", f"{debug}/{ident}", f"{debug}/deps/{ident}-{hbin}")
            yield from fingerprint(name, hbin, f"bin-{ident}")
        for unit, uh in ((name, h), (name + "-test", ht)):
            inc = f"{debug}/incremental/{ident}-{hexhash(seed, key, unit, 'inc', n=13)}"
            for s in range(rng.randint(1, 2)):  # a finished session, sometimes an older one beside it
                sess = f"{inc}/s-{hexhash(seed, key, unit, s, n=10)}-{hexhash(seed, key, unit, s, 'x', n=13)}-{hexhash(seed, key, unit, s, 'y', n=26)}"
                yield ("d", sess)
                yield ("f", f"{sess}.lock", 0, False)
                yield ("f", f"{sess}/dep-graph.bin", log_tri(rng, 100 * KB, 2 * MB, 250 * KB), False)
                yield ("f", f"{sess}/query-cache.bin", log_tri(rng, 100 * KB, 2 * MB, 250 * KB), False)
                yield ("f", f"{sess}/work-products.bin", log_tri(rng, 200, 20 * KB, 2 * KB), False)
                for cgu in range(rng.randint(40, 300)):
                    yield ("f", f"{sess}/{ident}.{hexhash(unit, s, cgu, n=16)}-cgu.{cgu:02}.rcgu.o", log_tri(rng, 1 * KB, 120 * KB, 4 * KB), False)


def make_pools(seed):
    rng = random.Random(f"{seed}:pool")
    binary = rng.randbytes(POOL_BYTES)
    words, size, text = RUST_WORDS, 0, []
    while size < POOL_BYTES:
        line = " " * (4 * rng.randint(0, 3)) + " ".join(rng.choice(words) for _ in range(rng.randint(2, 12))) + "\n"
        text.append(line)
        size += len(line)
    return memoryview(binary), memoryview("".join(text).encode()[:POOL_BYTES])


def run_plan(root, plan, write, pools=None, seed=0):
    """Writes (or, without `write`, only counts) one plan. Returns (files, dirs, bytes)."""
    files = dirs = total = 0
    made = {"caches"}  # created by main, with the root, locks and trash
    written = set()  # a path planned twice would be overwritten and miscounted
    offset_rng = random.Random(f"{seed}:offsets")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
    for item in plan:
        kind, path = item[0], item[1]
        if kind == "d":
            # Count every directory on the way, once, as makedirs creates it.
            new = []
            p = path
            while p and p not in made:
                new.append(p)
                made.add(p)
                p = p.rpartition("/")[0]
            dirs += len(new)
            if write and new:
                os.makedirs(os.path.join(root, path), exist_ok=True)
        elif path in written:
            raise SystemExit(f"gen-cargo-tree: internal error: {path} planned twice")
        elif kind == "l":
            written.add(path)
            files += 1
            if write:
                os.link(os.path.join(root, item[2]), os.path.join(root, path))
        else:
            size, text = item[2], item[3]
            data = size.encode() if isinstance(size, str) else None
            n = len(data) if data is not None else size
            written.add(path)
            files += 1
            total += n
            if write:
                if data is None:
                    pool = pools[1] if text else pools[0]
                    off = offset_rng.randrange(0, POOL_BYTES - n + 1)
                    data = pool[off:off + n]
                fd = os.open(os.path.join(root, path), flags, 0o644)
                try:
                    while data:
                        data = data[os.write(fd, data):]
                finally:
                    os.close(fd)
    return files, dirs, total


def generate_key(job):
    root, seed, scale, key, write = job
    universe = make_universe(seed, scale)
    pools = make_pools(seed) if write else None
    return run_plan(root, plan_key(seed, scale, key, universe), write, pools, seed=f"{seed}:{key}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Prints the file count (hard links included) and total bytes (each inode once) at the end.")
    ap.add_argument("root", help="the silo root to create; must not exist or be empty")
    ap.add_argument("--keys", type=int, default=8, help="number of caches, keys pr-1..pr-N (default 8)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="size of each cache: crates in the graph and workspace members scale with it (default 1.0: ~28k files, ~240 MB per key)")
    ap.add_argument("--seed", default="1", help="structure and contents follow from it (default 1)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="keys generated in parallel (default: CPU count)")
    ap.add_argument("--dry-run", action="store_true", help="write nothing; print what would be written")
    a = ap.parse_args()
    if a.keys < 1 or a.scale <= 0:
        ap.error("--keys must be >= 1 and --scale > 0")
    root = os.path.abspath(a.root)
    if not a.dry_run:
        if os.path.exists(root) and os.listdir(root):
            ap.error(f"{root} exists and is not empty")
        for d in ("caches", "locks", "trash"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        with open(os.path.join(root, "LAYOUT"), "w") as f:
            f.write("silo-layout 1\n")
    start = time.monotonic()
    jobs = [(root, a.seed, a.scale, f"pr-{i}", not a.dry_run) for i in range(1, a.keys + 1)]
    files, dirs, total = 1, 4, len("silo-layout 1\n")  # LAYOUT; root, caches, locks, trash
    if a.jobs > 1 and len(jobs) > 1:
        with Pool(min(a.jobs, len(jobs))) as pool:
            results = pool.map(generate_key, jobs, chunksize=1)
    else:
        results = [generate_key(j) for j in jobs]
    for f, d, t in results:
        files, dirs, total = files + f, dirs + d, total + t
    elapsed = time.monotonic() - start
    verb = "would write" if a.dry_run else "wrote"
    print(f"{verb} {files} files, {dirs} directories, {total} bytes ({total / 1024**3:.2f} GiB) in {elapsed:.1f} s")


if __name__ == "__main__":
    main()
