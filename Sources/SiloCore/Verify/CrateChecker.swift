// The per-crate checks of `silo verify`, run on every core: marker, archive, checksum, files,
// ownership. Each crate is independent of the others, so workers share nothing but the job list.

import SiloSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct CrateChecker: Sendable {
    let options: VerifyOptions
    let checksums: [String: [String: String]]

    static let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
    /// Files of one crate and kind listed one by one; past this, one problem says how many.
    static let filesListed = 5

    func checkAll(_ jobs: [CrateJob]) -> [Problem] {
        let results = ResultSlots(count: jobs.count)
        let progress = Progress.onTerminal(options.deep ? "verifying (deep)" : "verifying", total: jobs.count, unit: "crates")
        defer { progress?.finish() }
        DispatchQueue.concurrentPerform(iterations: Self.workers) { worker in
            var i = worker
            while i < jobs.count {
                results.set(i, check(jobs[i]))
                let size = options.deep ? ((try? FileSystem.status(jobs[i].crateFile)) ?? nil)?.size ?? 0 : 0
                progress?.advance(bytes: size)
                i += Self.workers
            }
        }
        return results.all()
    }

    func check(_ job: CrateJob) -> [Problem] {
        var problems: [Problem] = []
        let crate = job.name
        // The .crate: present, readable, and what the index says it is.
        var members: [ArchiveMember]?
        var contentMismatches: [String] = []
        var archiveBad = false
        if (try? FileSystem.status(job.crateFile))??.isRegular != true {
            if job.srcDir != nil {
                problems.append(Problem(.crateMissing, .warning, crate: crate, path: job.crateFile,
                                        detail: "sources without their .crate: cargo needs it on every run and will download it again (fails offline)", remedy: .none))
            }
        } else {
            let deepDir = options.deep ? job.srcDir : nil
            do {
                let contents = try CrateArchive.read(job.crateFile, visit: deepDir.map { dir in
                    { member, reader in
                        if !Self.sameContent(dir: dir, member: member, job: job, reader: &reader) { contentMismatches.append(member.path) }
                    }
                })
                members = contents.members
                if let expected = checksums[job.registry]?[crate], expected != contents.sha256 {
                    archiveBad = true
                    problems.append(Problem(.crateChecksumMismatch, .error, crate: crate, path: job.crateFile,
                                            detail: "sha256 \(contents.sha256.prefix(16))... but the index says \(expected.prefix(16))...", remedy: .removeCrateFile(job.crateFile)))
                }
            } catch {
                archiveBad = true
                problems.append(Problem(.crateUnreadableArchive, .error, crate: crate, path: job.crateFile,
                                        detail: "\(error)", remedy: .removeCrateFile(job.crateFile)))
            }
        }
        guard let dir = job.srcDir else { return problems }

        // The marker decides what cargo does with the dir.
        let marker = dir + "/.cargo-ok"
        let markerText: String? = (try? FileSystem.status(marker))??.isRegular == true ? ((try? FileSystem.read(marker)) ?? nil) : nil
        let markerPresent = (try? FileSystem.status(marker)) ?? nil != nil
        if !markerPresent {
            problems.append(Problem(.markerMissing, .warning, crate: crate, path: dir,
                                    detail: "no .cargo-ok: an interrupted extraction; cargo unpacks over it and keeps any leftovers", remedy: .reextract(crateDir: dir)))
        } else if markerText != Verifier.validMarker {
            let shown = markerText.map { $0.isEmpty ? "empty" : "'\(displayable($0))'" } ?? "not a regular file"
            problems.append(Problem(.markerInvalid, .info, crate: crate, path: marker,
                                    detail: ".cargo-ok is \(shown); cargo removes the dir and extracts it again itself", remedy: .reextract(crateDir: dir)))
        } else if let members {
            problems += compare(dir: dir, crate: crate, members: members, archiveBad: archiveBad)
        }
        if options.deep && !contentMismatches.isEmpty && markerText == Verifier.validMarker {
            for path in contentMismatches.prefix(20) {
                problems.append(Problem(.fileContentMismatch, .error, crate: crate, path: dir + "/" + Self.relative(path, crate: crate),
                                        detail: "content differs from the .crate", remedy: .reextract(crateDir: dir)))
            }
        }
        problems += AccessCheck(uid: options.uid, gid: options.gid).checkCrateDir(dir, crate: crate)
        return problems
    }

    /// Archive members against the extracted files: missing, wrong type, wrong size; extra files.
    func compare(dir: String, crate: String, members: [ArchiveMember], archiveBad: Bool) -> [Problem] {
        var problems: [Problem] = []
        let remedy: Remedy = .reextract(crateDir: dir)
        var expected = Set<String>()
        var found: [ProblemKind: [(path: String, detail: String)]] = [:]
        for m in members where m.kind == .file {
            let rel = Self.relative(m.path, crate: crate)
            expected.insert(rel)
            let path = dir + "/" + rel
            guard let st = (try? FileSystem.status(path)) ?? nil else {
                found[.fileMissing, default: []].append((rel, "in the .crate (\(m.size) bytes), missing on disk"))
                continue
            }
            if !st.isRegular {
                let what = st.isDirectory ? "a directory" : st.isSymlink ? "a symlink" : "not a regular file"
                found[.fileTypeMismatch, default: []].append((rel, "a regular file in the .crate, \(what) on disk"))
            } else if st.size != m.size {
                found[.fileSizeMismatch, default: []].append((rel, "\(st.size) bytes on disk, \(m.size) in the .crate"))
            }
        }
        // One problem per file while they are few; one per crate and kind when a whole tree is gone.
        for kind in [ProblemKind.fileMissing, .fileTypeMismatch, .fileSizeMismatch] {
            guard let list = found[kind] else { continue }
            if list.count <= Self.filesListed {
                for f in list { problems.append(Problem(kind, .error, crate: crate, path: dir + "/" + f.path, detail: f.detail, remedy: remedy)) }
            } else {
                let sample = list.prefix(3).map(\.path).joined(separator: ", ")
                problems.append(Problem(kind, .error, crate: crate, path: dir + "/" + list[0].path,
                                        detail: "\(list.count) of the .crate's \(expected.count) files, e.g. \(sample)", remedy: remedy))
            }
        }
        // Extra files: what is on disk and not in the archive (info: cargo ignores them).
        var dirs = Set<String>()
        for rel in expected {
            var parts = rel.split(separator: "/").dropLast()
            while !parts.isEmpty { dirs.insert(parts.joined(separator: "/")); parts = parts.dropLast() }
        }
        var extra: [String] = []
        var stack = [""]
        while let relDir = stack.popLast() {
            let abs = relDir.isEmpty ? dir : dir + "/" + relDir
            for name in (try? FileSystem.list(abs)) ?? [] {
                let rel = relDir.isEmpty ? name : relDir + "/" + name
                if rel == ".cargo-ok" || expected.contains(rel) { continue }
                if dirs.contains(rel), (try? FileSystem.status(abs + "/" + name))??.isDirectory == true { stack.append(rel); continue }
                extra.append(rel)
            }
        }
        for rel in extra.sorted().prefix(20) {
            problems.append(Problem(.extraFile, .info, crate: crate, path: dir + "/" + rel, detail: "not in the .crate", remedy: .none))
        }
        return problems
    }

    static func relative(_ memberPath: String, crate: String) -> String {
        memberPath.hasPrefix(crate + "/") ? String(memberPath.dropFirst(crate.count + 1)) : memberPath
    }

    /// Streams a member's content against the extracted file; false on any difference.
    static func sameContent(dir: String, member: ArchiveMember, job: CrateJob, reader: inout MemberReader) -> Bool {
        let path = dir + "/" + relative(member.path, crate: job.name)
        guard let fd = try? FileDescriptor.open(path, [.readOnly, .noFollow, .closeOnExec]) else { return true } // reported as missing
        defer { fd.close() }
        var same = true
        var disk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            guard let chunk = try? reader.read(), !chunk.isEmpty else { break }
            guard same else { continue }
            var got = 0
            while got < chunk.count {
                let n = disk.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress!, chunk.count - got) }
                if n <= 0 { same = false; break }
                if !disk[0..<n].elementsEqual(chunk[got..<(got + n)]) { same = false; break }
                got += n
            }
        }
        return same
    }
}

/// Results written by index from several workers, read once they are done.
final class ResultSlots: @unchecked Sendable {
    private var slots: [[Problem]]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: [], count: count) }
    func set(_ i: Int, _ v: [Problem]) { lock.lock(); slots[i] = v; lock.unlock() }
    func all() -> [Problem] { lock.lock(); defer { lock.unlock() }; return slots.flatMap { $0 } }
}

/// Whether the uid that will run cargo may read and write what it needs.
struct AccessCheck {
    let uid: UInt32
    let gid: UInt32

    func may(_ st: FileStat, read: Bool = false, write: Bool = false, search: Bool = false) -> Bool {
        if uid == 0 { return true }
        let shift: UInt32 = st.uid == uid ? 6 : st.gid == gid ? 3 : 0
        let bits = (st.permissions >> shift) & 7
        return (!read || bits & 4 != 0) && (!write || bits & 2 != 0) && (!search || bits & 1 != 0)
    }

    /// A crate dir: every entry readable (dirs searchable) by the uid; foreign owners noted once.
    func checkCrateDir(_ dir: String, crate: String) -> [Problem] {
        guard uid != 0 else { return [] }
        var foreign: [UInt32: Int] = [:]
        var unreadable: [String] = []
        var stack = [dir]
        while let d = stack.popLast() {
            guard let st = try? FileSystem.status(d) else { continue }
            if st.uid != uid { foreign[st.uid, default: 0] += 1 }
            if !may(st, read: true, search: true) { unreadable.append(d); continue }
            for name in (try? FileSystem.list(d)) ?? [] {
                let p = d + "/" + name
                guard let e = try? FileSystem.status(p) else { continue }
                if e.isDirectory { stack.append(p); continue }
                // A base's read-only inode, hard-linked in, belongs to another uid by design.
                if e.uid != uid && !Walk.isSharedWithBase(e) { foreign[e.uid, default: 0] += 1 }
                if e.isRegular && !may(e, read: true) { unreadable.append(p) }
            }
        }
        var problems: [Problem] = []
        if !foreign.isEmpty {
            let owners = foreign.sorted { $0.key < $1.key }.map { "\($0.value) owned by uid \($0.key)" }.joined(separator: ", ")
            problems.append(Problem(.foreignOwner, .warning, crate: crate, path: dir, detail: "\(owners); cargo runs as uid \(uid)", remedy: .chown(dir)))
        }
        if !unreadable.isEmpty {
            problems.append(Problem(.unreadable, .error, crate: crate, path: unreadable.sorted()[0],
                                    detail: "\(unreadable.count) entr\(unreadable.count == 1 ? "y" : "ies") uid \(uid) cannot read (cargo fails with os error 13)", remedy: .chown(dir)))
        }
        return problems
    }

    /// The directories and lock files cargo writes: the registry dirs and `.package-cache*`.
    func checkHomeEntries(home: String, registries: [String]) -> [Problem] {
        guard uid != 0 else { return [] }
        var paths = [home, home + "/registry", home + "/registry/index", home + "/registry/cache", home + "/registry/src",
                     home + "/.package-cache", home + "/.package-cache-mutate", home + "/.global-cache"]
        for r in registries {
            for part in ["index", "cache", "src"] { paths.append("\(home)/registry/\(part)/\(r)") }
            paths.append("\(home)/registry/index/\(r)/.cache")
        }
        var problems: [Problem] = []
        for p in paths {
            guard let st = (try? FileSystem.status(p)) ?? nil, !st.isSymlink else { continue }
            let ok = st.isDirectory ? may(st, read: true, write: true, search: true) : may(st, read: true, write: true)
            if !ok {
                problems.append(Problem(.unwritable, .error, crate: nil, path: p, detail: "owned by uid \(st.uid), mode \(String(st.permissions, radix: 8)): uid \(uid) cannot write it", remedy: .chown(p)))
            } else if st.uid != uid {
                problems.append(Problem(.foreignOwner, .warning, crate: nil, path: p, detail: "owned by uid \(st.uid); cargo runs as uid \(uid)", remedy: .chown(p)))
            }
        }
        return problems
    }
}

/// Build-script outputs and fingerprints in a target dir, by package.
struct BuildOutputs {
    let target: String

    /// `<profile dir>/{build,.fingerprint}/<package>-<hash>` directories, for every profile dir
    /// (`debug`, `release`, custom profiles, and those under a `<triple>/`).
    func directories(of package: String) -> [String] {
        var out: [String] = []
        for profile in profileDirectories() {
            for part in ["build", ".fingerprint"] {
                let dir = profile + "/" + part
                guard (try? FileSystem.status(dir))??.isDirectory == true else { continue } // never through a link
                for name in (try? FileSystem.list(dir)) ?? [] where Self.packageOf(name) == package {
                    out.append(dir + "/" + name)
                }
            }
        }
        return out.sorted()
    }

    func profileDirectories() -> [String] {
        var out: [String] = []
        for name in (try? FileSystem.list(target)) ?? [] {
            let p = target + "/" + name
            guard (try? FileSystem.status(p))??.isDirectory == true else { continue }
            if (try? FileSystem.status(p + "/.fingerprint"))??.isDirectory == true { out.append(p); continue }
            for inner in (try? FileSystem.list(p)) ?? [] where (try? FileSystem.status(p + "/" + inner))??.isDirectory == true
                && (try? FileSystem.status(p + "/" + inner + "/.fingerprint"))??.isDirectory == true {
                out.append(p + "/" + inner)
            }
        }
        return out
    }

    /// `<package>` of `<package>-<16 hex>`.
    static func packageOf(_ name: String) -> String? {
        guard let dash = name.lastIndex(of: "-") else { return nil }
        let hash = name[name.index(after: dash)...]
        guard hash.count == 16, hash.allSatisfy(\.isHexDigit) else { return nil }
        return String(name[..<dash])
    }

    /// Outputs of packages damaged now, or healed after the outputs were written.
    func stale(damaged: [String: String], healed: [String: Double]) -> [Problem] {
        var problems: [Problem] = []
        for package in Set(damaged.keys).union(healed.keys).sorted() {
            let dirs = directories(of: package).filter { dir in
                if damaged[package] != nil { return true }
                // Built before the heal: every file of the dir is older than it.
                let newest = Verifier.regularFiles(under: dir).compactMap { (try? FileSystem.status($0))??.modifiedTime }.max()
                    ?? (try? FileSystem.status(dir))??.modifiedTime ?? 0
                return newest < (healed[package] ?? 0)
            }
            guard !dirs.isEmpty else { continue }
            let why = damaged[package].map { "its sources have a \($0) problem" } ?? "its sources were healed after this was built"
            problems.append(Problem(.staleBuildOutput, .error, crate: package, path: dirs[0],
                                    detail: "\(dirs.count) build-script output and fingerprint dir(s) of \(package): \(why); a build script that saw the damage keeps its answer here", remedy: .cleanBuildOutputs(package: package)))
        }
        return problems
    }
}
