#!/usr/bin/env python3
"""gen-registry: a CARGO_HOME with hundreds of crates, as cargo leaves it, for benchmarking verify.

Takes the crate sources Debian ships (/usr/share/cargo/registry, as the fixture registry does) and
packs each of them many times under new names (`<name>-c<i>`), with the fixture tool's own
deterministic .crate writer. Writes, under HOME:
  registry/cache/<reg>/<name>-<version>.crate
  registry/src/<reg>/<name>-<version>/...   (extracted, with .cargo-ok = {"v":1})
  registry/index/<reg>/.cache/<path>        (sparse index cache entries with each .crate's sha256)
Usage: bench/gen-registry.py HOME [--crates 400]
"""
import argparse, hashlib, importlib.machinery, importlib.util, io, json, os, struct, sys, tarfile, gzip

here = os.path.dirname(os.path.abspath(__file__))
loader = importlib.machinery.SourceFileLoader("fixture", os.path.join(here, "..", "fixtures", "registry", "silo-fixture-registry"))
spec = importlib.util.spec_from_loader("fixture", loader)
fixture = importlib.util.module_from_spec(spec)
loader.exec_module(fixture)

REG = "127.0.0.1-0123456789abcdef"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("home")
    p.add_argument("--crates", type=int, default=400)
    p.add_argument("--source", default="/usr/share/cargo/registry")
    a = p.parse_args()
    sources = sorted(d for d in os.listdir(a.source) if os.path.isfile(os.path.join(a.source, d, "Cargo.toml")))
    if not sources:
        sys.exit(f"no crate sources in {a.source}")
    total = 0
    for i in range(a.crates):
        src = os.path.join(a.source, sources[i % len(sources)])
        base, version = sources[i % len(sources)].rsplit("-", 1)
        name = f"{base}-c{i}"
        data = fixture.make_crate(src, name, version)
        total += len(data)
        cache = os.path.join(a.home, "registry", "cache", REG)
        os.makedirs(cache, exist_ok=True)
        with open(os.path.join(cache, f"{name}-{version}.crate"), "wb") as fh:
            fh.write(data)
        out = os.path.join(a.home, "registry", "src", REG)
        os.makedirs(out, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
            tar.extractall(out, filter="tar")
        with open(os.path.join(out, f"{name}-{version}", ".cargo-ok"), "w") as fh:
            fh.write('{"v":1}')
        line = json.dumps({"name": name, "vers": version, "deps": [], "cksum": hashlib.sha256(data).hexdigest(), "features": {}, "yanked": False}, separators=(",", ":"))
        entry = os.path.join(a.home, "registry", "index", REG, ".cache", fixture.index_path(name))
        os.makedirs(os.path.dirname(entry), exist_ok=True)
        with open(entry, "wb") as fh:
            fh.write(b"\x03" + struct.pack("<I", 2) + b"etag: bench\x00" + version.encode() + b"\x00" + line.encode() + b"\x00")
    for f in (".package-cache", ".package-cache-mutate"):
        open(os.path.join(a.home, f), "a").close()
    print(f"{a.crates} crates, {total} compressed bytes in {a.home}")


if __name__ == "__main__":
    main()
