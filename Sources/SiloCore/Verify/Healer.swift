// `silo verify --heal`: carry out each problem's remedy, safely.
//
// While it changes a CARGO_HOME it holds cargo's MutateExclusive lock, taken the way cargo takes
// it (`.package-cache-mutate` exclusive, then `.package-cache` exclusive, flock), so no cargo of
// version >= 1.74 reads or writes the home meanwhile; a running build is waited for, never raced.
// A bad crate dir loses its `.cargo-ok` marker first and the rest after: if silo is killed midway,
// what is left is an interrupted extraction, which cargo unpacks over -- never a trusted half-tree.
// Every healed crate's build-script outputs and fingerprints leave the target dir too, so no
// manual `cargo clean` is ever needed; without a target dir at hand the heal is written to
// `$CARGO_HOME/.silo-healed` for a later `verify --target-dir` to find.
// Nothing outside the given home and target dir is touched: every path a remedy names is checked
// to lie below one of them, and every walk is the symlink-safe TreeWalk.

import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

public struct Healer {
    public let options: VerifyOptions
    public let log: Logger

    public init(options: VerifyOptions, log: Logger) {
        self.options = options
        self.log = log
    }

    public func heal(_ result: inout VerifyResult) throws(SiloError) {
        let fixable = result.problems.indices.filter { result.problems[$0].remedy != .none }
        guard !fixable.isEmpty else { return }
        let locks = try takeMutateExclusive()
        defer { for fd in locks.reversed() { fd.close() } }

        var healedPackages = Set<String>()
        var done: [Remedy: Bool] = [:]
        // Order: archives and index first (what re-extraction reads), then sources, then the rest.
        let order: (Remedy) -> Int = {
            switch $0 {
            case .removeIndexEntry, .removeCrateFile: return 0
            case .reextract: return 1
            case .removeTree, .removeLink, .chown: return 2
            case .cleanBuildOutputs: return 3
            case .none: return 4
            }
        }
        for i in fixable.sorted(by: { order(result.problems[$0].remedy) < order(result.problems[$1].remedy) }) {
            let remedy = result.problems[i].remedy
            if let ok = done[remedy] { result.problems[i].healed = ok; continue }
            let ok = apply(remedy, crate: result.problems[i].crate, healedPackages: &healedPackages)
            done[remedy] = ok
            result.problems[i].healed = ok
        }
        // Healed crates' outputs go even when nothing flagged them (no target dir problem seen yet).
        if let target = options.target {
            for package in healedPackages.sorted() where done[.cleanBuildOutputs(package: package)] == nil {
                _ = cleanBuildOutputs(package, target: target)
            }
        } else if !healedPackages.isEmpty {
            recordHeals(healedPackages)
        }
    }

    func apply(_ remedy: Remedy, crate: String?, healedPackages: inout Set<String>) -> Bool {
        do {
            switch remedy {
            case .reextract(let dir):
                try requireInside(dir)
                if unlink(dir + "/.cargo-ok") != 0 && errno != ENOENT { throw Errno.current("unlink", path: dir + "/.cargo-ok") }
                let walk = try TreeWalk.remove(dir)
                guard walk.complete else { throw SiloError("cannot remove all of \(dir): \(walk.failures.first.map { "\($0)" } ?? "a mount point inside")") }
                if let crate { healedPackages.insert(Verifier.packageName(ofCrateDir: crate)) }
                log.info("healed \(crate ?? dir): removed its sources; cargo re-extracts them offline from the .crate")
            case .removeCrateFile(let path), .removeIndexEntry(let path), .removeLink(let path):
                try requireInside(path)
                if unlink(path) != 0 && errno != ENOENT { throw Errno.current("unlink", path: path) }
                if case .removeLink = remedy { log.info("removed dangling link \(path)") } else {
                    log.info("removed \(path); cargo fetches it again, which needs the network")
                }
            case .removeTree(let path):
                try requireInside(path)
                let walk = try TreeWalk.remove(path)
                guard walk.complete else { throw SiloError("cannot remove all of \(path)") }
                log.info("removed orphaned \(path)")
            case .chown(let path):
                try requireInside(path)
                guard geteuid() == 0 else {
                    log.warning("cannot give \(path) to uid \(options.uid): changing owners needs root (run silo verify --heal as root)")
                    return false
                }
                let walk = try TreeWalk.changeOwner(path, uid: options.uid, gid: options.gid)
                guard walk.failures.isEmpty else { throw SiloError("cannot chown all of \(path): \(walk.failures[0])") }
                log.info("gave \(path) to \(options.uid):\(options.gid) (\(walk.files) entries changed)")
            case .cleanBuildOutputs(let package):
                guard let target = options.target else { return false }
                return cleanBuildOutputs(package, target: target)
            case .none:
                return false
            }
            return true
        } catch {
            log.error("cannot heal \(crate ?? ""): \(error)")
            return false
        }
    }

    func cleanBuildOutputs(_ package: String, target: String) -> Bool {
        var ok = true
        for dir in BuildOutputs(target: target).directories(of: package) {
            guard (try? requireInside(dir)) != nil, let walk = try? TreeWalk.remove(dir), walk.complete else { ok = false; continue }
        }
        if ok { log.info("removed the build-script outputs and fingerprints of \(package) from \(target)") }
        return ok
    }

    /// A remedy's path must lie below the home or the target dir.
    func requireInside(_ path: String) throws(SiloError) {
        let roots = [options.home] + (options.target.map { [$0] } ?? [])
        guard !path.split(separator: "/").contains(".."),
              roots.contains(where: { path.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }) else {
            throw SiloError("refusing to change \(path): it is outside \(roots.joined(separator: " and "))")
        }
    }

    /// cargo's MutateExclusive: `.package-cache-mutate` then `.package-cache`, both exclusive.
    func takeMutateExclusive() throws(SiloError) -> [FileDescriptor] {
        var held: [FileDescriptor] = []
        for name in CrateSourcePruner.lockOrder {
            let path = options.home + "/" + name
            do {
                let existed = (try? FileSystem.status(path)) ?? nil != nil
                let fd = try FileDescriptor.open(path, [.readWrite, .create, .noFollow, .closeOnExec], mode: 0o644)
                held.append(fd)
                // A lock file root creates in a runner's home must stay usable by the runner's cargo.
                if !existed && geteuid() == 0 { try? FileDescriptor.cwd.changeOwnerAt(path, uid: options.uid, gid: options.gid) }
                if try !fd.tryLock(.exclusive) {
                    log.info("waiting for cargo's lock \(path): a cargo process is using this home")
                    try fd.lock(.exclusive)
                }
            } catch {
                for fd in held { fd.close() }
                throw SiloError("cannot take cargo's lock \(path): \(error)")
            }
        }
        return held
    }

    func recordHeals(_ packages: Set<String>) {
        let path = options.home + "/" + Verifier.healJournal
        var text = (try? FileSystem.read(path)).flatMap { $0 } ?? ""
        let now = String(format: "%.6f", Clock.now())
        for p in packages.sorted() { text += "\(p) \(now)\n" }
        try? FileSystem.writeAtomically(path, text)
    }
}
