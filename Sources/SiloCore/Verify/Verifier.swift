// `silo verify`: find every corruption of a CARGO_HOME (and its target dir) that cargo trusts.
//
// Cargo trusts an extracted crate forever once `.cargo-ok` says `{"v":1}`, and a cached `.crate`
// of non-zero length forever. So the check is against the one thing cargo itself extracted from:
// each crate's `.crate` archive. Fast by default: the archive's member list (path, type, size)
// against lstat of the extracted files, no extracted content read; `--deep` compares contents too,
// streaming each archive once. Crates are checked in parallel, one per core.
//
// Also checked: the sha256 of each .crate against the `cksum` of its version in the sparse index
// cache; that index cache entries parse; ownership and permissions for the uid that will run
// cargo; dangling `bin/` links; registry dirs of a hash an older cargo used or without an index;
// and, in the target dir, build-script outputs and fingerprints of crates whose sources are (or
// were) damaged -- the rustix trap: a build script that saw a missing file caches its wrong
// answer in target/ even after the sources are repaired.
//
// Heals are recorded in `$CARGO_HOME/.silo-healed` (package name and time, one per line), so a
// later `verify --target-dir` of a target that was not at hand during the heal still finds the
// outputs built before it.

import SiloSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct VerifyOptions: Sendable {
    public var home: String
    public var target: String?
    public var deep = false
    public var uid: UInt32
    public var gid: UInt32
    public init(home: String, target: String?, uid: UInt32, gid: UInt32) {
        self.home = home
        self.target = target
        self.uid = uid
        self.gid = gid
    }
}

public struct VerifyResult: Sendable, Encodable {
    public var home: String
    public var target: String?
    public var crates = 0
    public var archives = 0
    public var problems: [Problem] = []
    public var seconds = 0.0
    /// Problems that matter for the exit status (info ones do not).
    public var open: [Problem] { problems.filter { $0.severity != .info && $0.healed != true } }
}

public enum Verifier {
    /// The sparse-index hashes older cargos used for crates.io: their directories are orphans
    /// that nothing deletes once cargo moved to the new hash (cargo >= 1.85).
    static let retiredRegistries = ["index.crates.io-6f17d22bba15001f", "github.com-1ecc6299db9ec823"]
    static let validMarker = "{\"v\":1}"
    static let healJournal = ".silo-healed"

    public static func run(_ o: VerifyOptions) throws(SiloError) -> VerifyResult {
        let t0 = Clock.monotonic()
        guard (try? FileSystem.status(o.home))??.isDirectory == true else {
            throw SiloError("--cargo-home '\(displayable(o.home))' is not a directory; expected a CARGO_HOME (with registry/ inside)")
        }
        // Every path below is built from the home and read or changed without resolving a symlink
        // at its last component; these are the components above them, so none may be a link.
        for inner in ["registry", "registry/index", "registry/cache", "registry/src", "bin"] {
            if (try? FileSystem.status(o.home + "/" + inner))??.isSymlink == true {
                throw SiloError("\(o.home)/\(inner) is a symlink; silo does not follow symlinks inside a cargo home it checks (replace it with the directory it points at)")
            }
        }
        var result = VerifyResult(home: o.home, target: o.target)
        let reg = o.home + "/registry"
        let indexRegs = Set(subdirectories(reg + "/index"))
        let srcRegs = subdirectories(reg + "/src")
        let cacheRegs = subdirectories(reg + "/cache")

        // Orphan registries: no index beside them, or a hash cargo no longer uses.
        var orphaned = Set<String>()
        for (part, regs) in [("index", Array(indexRegs)), ("cache", cacheRegs), ("src", srcRegs)] {
            for r in regs.sorted() {
                let retired = retiredRegistries.contains(r)
                guard retired || (part != "index" && !indexRegs.contains(r)) else { continue }
                orphaned.insert(r)
                result.problems.append(Problem(.orphanRegistry, .warning, crate: nil, path: "\(reg)/\(part)/\(r)",
                                               detail: retired ? "a registry hash older cargo versions used; cargo >= 1.85 never reads it" : "no registry/index/\(r) beside it: cargo's next gc deletes it as an orphan",
                                               remedy: .removeTree("\(reg)/\(part)/\(r)")))
            }
        }

        // Index cache entries: parse each; keep the checksums.
        var checksums: [String: [String: String]] = [:] // reg -> "name-version" -> cksum
        for r in indexRegs.sorted() where !orphaned.contains(r) {
            let cacheDir = "\(reg)/index/\(r)/.cache"
            for file in regularFiles(under: cacheDir) {
                switch IndexCache.parse(file) {
                case .success(let entries):
                    for (k, v) in entries { checksums[r, default: [:]][k] = v }
                case .failure(let why):
                    result.problems.append(Problem(.indexCacheCorrupt, .error, crate: nil, path: file, detail: why.description, remedy: .removeIndexEntry(file)))
                }
            }
        }

        // Crates, in parallel: every extracted dir, and every .crate without one.
        var jobs: [CrateJob] = []
        for r in srcRegs where !orphaned.contains(r) {
            for name in subdirectories("\(reg)/src/\(r)") {
                jobs.append(CrateJob(registry: r, name: name, srcDir: "\(reg)/src/\(r)/\(name)", crateFile: "\(reg)/cache/\(r)/\(name).crate"))
            }
        }
        let extracted = Set(jobs.map { "\($0.registry)/\($0.name)" })
        for r in cacheRegs where !orphaned.contains(r) {
            for file in ((try? FileSystem.list("\(reg)/cache/\(r)")) ?? []).sorted() where file.hasSuffix(".crate") {
                let name = String(file.dropLast(6))
                if !extracted.contains("\(r)/\(name)") {
                    jobs.append(CrateJob(registry: r, name: name, srcDir: nil, crateFile: "\(reg)/cache/\(r)/\(file)"))
                }
            }
        }
        let checker = CrateChecker(options: o, checksums: checksums)
        let perCrate = checker.checkAll(jobs)
        result.crates = jobs.filter { $0.srcDir != nil }.count
        result.archives = jobs.count
        result.problems += perCrate

        // Ownership and permissions of what cargo writes outside the crate dirs.
        result.problems += AccessCheck(uid: o.uid, gid: o.gid).checkHomeEntries(home: o.home, registries: (indexRegs.union(cacheRegs).union(srcRegs)).subtracting(orphaned).sorted())

        // bin/ links whose target is gone (deleted rustup proxies).
        for name in ((try? FileSystem.list(o.home + "/bin")) ?? []).sorted() {
            let path = o.home + "/bin/" + name
            guard (try? FileSystem.status(path))??.isSymlink == true else { continue }
            var st = stat()
            if stat(path, &st) != 0 && errno == ENOENT {
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?"
                result.problems.append(Problem(.danglingBinLink, .warning, crate: nil, path: path, detail: "points at \(target), which does not exist", remedy: .removeLink(path)))
            }
        }

        // Target dir: outputs of crates whose sources are damaged now, or were healed since they were built.
        if let target = o.target {
            let sourceKinds: Set<ProblemKind> = [.markerMissing, .fileMissing, .fileSizeMismatch, .fileTypeMismatch, .fileContentMismatch, .unreadable]
            let damaged = Dictionary(perCrate.filter { sourceKinds.contains($0.kind) }.compactMap { p in p.crate.map { (packageName(ofCrateDir: $0), p.kind.rawValue) } }, uniquingKeysWith: { a, _ in a })
            let healed = readHealJournal(o.home)
            result.problems += BuildOutputs(target: target).stale(damaged: damaged, healed: healed)
        }
        result.problems.sort { ($0.severity, $0.kind.rawValue, $0.path) < ($1.severity, $1.kind.rawValue, $1.path) }
        result.seconds = Clock.monotonic() - t0
        return result
    }

    /// `name` of a `name-version` crate dir: the version starts at the last `-` followed by a digit.
    static func packageName(ofCrateDir dir: String) -> String {
        var i = dir.endIndex
        while let dash = dir[..<i].lastIndex(of: "-") {
            let next = dir.index(after: dash)
            if next < dir.endIndex, dir[next].isNumber { return String(dir[..<dash]) }
            i = dash
        }
        return dir
    }

    static func readHealJournal(_ home: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in ((try? FileSystem.read(home + "/" + healJournal)) ?? "")?.split(separator: "\n") ?? [] {
            let f = line.split(separator: " ")
            if f.count == 2, let t = Double(f[1]) { out[String(f[0])] = max(out[String(f[0])] ?? 0, t) }
        }
        return out
    }

    static func subdirectories(_ path: String) -> [String] {
        ((try? FileSystem.list(path)) ?? []).filter { !$0.hasPrefix(".") && (try? FileSystem.status(path + "/" + $0))??.isDirectory == true }.sorted()
    }

    /// Regular files below `path`, never following a symlink.
    static func regularFiles(under path: String) -> [String] {
        var out: [String] = []
        var stack = [path]
        while let dir = stack.popLast() {
            for name in ((try? FileSystem.list(dir)) ?? []).sorted() {
                let p = dir + "/" + name
                guard let st = try? FileSystem.status(p) else { continue }
                if st.isDirectory { stack.append(p) } else if st.isRegular { out.append(p) }
            }
        }
        return out.sorted()
    }
}

/// One crate to check: its extracted dir (if any) and its .crate.
struct CrateJob: Sendable {
    var registry: String
    var name: String
    var srcDir: String?
    var crateFile: String
}

/// The sparse index cache file: 0x03, u32 LE index version, a header line (etag or last-modified),
/// NUL, then `<version> NUL <json line> NUL` pairs.
enum IndexCache {
    static func parse(_ path: String) -> Result<[String: String], ParseFailure> {
        guard let fd = try? FileDescriptor.open(path, [.readOnly, .noFollow, .closeOnExec]) else { return .failure(ParseFailure("cannot open")) }
        defer { fd.close() }
        guard let bytes = try? fd.readAll() else { return .failure(ParseFailure("cannot read")) }
        guard bytes.count >= 5 else { return .failure(ParseFailure("\(bytes.count) bytes: shorter than the 5-byte header")) }
        guard bytes[0] == 3 else { return .failure(ParseFailure("cache version byte is \(bytes[0]); cargo writes 3")) }
        let parts = bytes[5...].split(separator: 0, omittingEmptySubsequences: false)
        // parts: header, then version/json pairs, then the empty piece after the final NUL.
        guard parts.count >= 2, parts.last?.isEmpty == true else { return .failure(ParseFailure("does not end with a NUL: truncated")) }
        let records = parts.dropFirst().dropLast()
        guard records.count % 2 == 0 else { return .failure(ParseFailure("odd number of version/record fields: truncated or garbled")) }
        var out: [String: String] = [:]
        var it = records.makeIterator()
        while let v = it.next(), let json = it.next() {
            let version = String(decoding: v, as: UTF8.self)
            guard let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any],
                  let name = object["name"] as? String, let vers = object["vers"] as? String, vers == version,
                  let cksum = object["cksum"] as? String else {
                return .failure(ParseFailure("record for version '\(displayable(version))' is not a valid index line"))
            }
            out["\(name)-\(vers)"] = cksum
        }
        return .success(out)
    }

    struct ParseFailure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }
}

extension IndexCache.ParseFailure: Sendable {}
