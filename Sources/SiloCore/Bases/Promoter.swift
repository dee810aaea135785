// `silo promote`: a trusted key's CARGO_HOME becomes the next generation of a base.
//
//   1. refuse an untrusted key (TrustPolicy) or a key without a complete cache;
//   2. take the collector's hold on the key's slot (`.use` exclusive): no job runs in it, so the
//      snapshot is of a home at rest, and none starts until the copy is done;
//   3. verify the home (the default checks, not --deep): a base with a half-deleted crate would
//      hand that crate to every cache seeded from it, where cargo trusts its .cargo-ok forever;
//   4. clone registry/, git/ and .global-cache into bases/<name>/.new-<pid> (reflink where the
//      filesystem can, else copy: the key's own files stay writable by its jobs, so they are never
//      linked), every file read-only and owned by the promoter; symlinks are left out;
//   5. write BASE, then rename the staging directory to the next generation number.
//
// A promotion that fails or is killed leaves at most `.new-<pid>`, which no seeding ever looks at
// and which the next promotion or reap removes.

import SiloSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct PromoteRequest: Sendable {
    public var key: CacheKey
    public var slot = 1
    public var name: CacheKey
    public var withTarget = false
    public var trust: TrustPolicy
    /// Seconds to wait for jobs in the key to end; nil: do not wait.
    public var wait: Double?
    public var verify = true

    public init(key: CacheKey, name: CacheKey, trust: TrustPolicy) {
        self.key = key
        self.name = name
        self.trust = trust
    }
}

public struct PromoteResult: Sendable, Encodable {
    public var base: String
    public var key: String
    public var slot: Int
    public var method: String
    public var files: Int
    public var directories: Int
    public var skipped: [String]
    public var retired: [String]
    public var seconds: Double
}

public struct Promoter {
    public let root: SiloRoot
    let log: Logger

    public init(root: SiloRoot, log: Logger) {
        self.root = root
        self.log = log
    }

    public func run(_ r: PromoteRequest) throws(SiloError) -> PromoteResult {
        let t0 = Clock.monotonic()
        if let why = r.trust.refusal(r.key) { throw SiloError("cannot promote: \(why)", exitCode: ExitCode.usage) }
        try root.prepare()
        let slotPath = root.slotPath(r.key, r.slot)
        guard CacheLayout.isComplete(slotPath) else {
            throw SiloError("cannot promote: key '\(r.key)' has no cache in slot \(r.slot) (expected \(slotPath)); run a job with silo exec --key \(r.key) first", exitCode: ExitCode.usage)
        }

        // No job in the key while it is copied: the snapshot is of a home at rest.
        let hold = try LeaseManager(root: root).holdIdle(key: r.key, slot: r.slot, wait: r.wait, purpose: "promote")
        defer { hold.close() }
        let home = root.homePath(r.key, r.slot)
        if r.verify { try verify(home, key: r.key) }

        let bases = BaseStore(root: root)
        let namePath = bases.namePath(r.name)
        let dir: FileDescriptor
        do {
            try FileSystem.makeDirectories(namePath, mode: 0o755)
            dir = try FileDescriptor.open(namePath, [.readOnly, .directory, .noFollow, .closeOnExec])
            try dir.lock(.exclusive)
        } catch {
            throw SiloError("cannot lock base directory \(namePath): \(error)")
        }
        defer { dir.close() }
        for leftover in bases.abandonedStaging() where leftover.hasPrefix(namePath + "/") {
            _ = try? Trash(root: root).delete(leftover, label: "base-staging")
        }

        let generation = (bases.generations(r.name).last ?? 0) + 1
        let staging = namePath + "/" + BaseStore.stagingPrefix + String(getpid())
        do {
            if try FileSystem.status(staging) != nil { _ = try TreeWalk.remove(staging) }
            try FileSystem.makeDirectories(staging + "/home", mode: 0o755)
        } catch {
            throw SiloError("cannot create \(staging): \(error)")
        }
        var report = CloneReport()
        let method: SeedMethod = TreeClone.reflinkSupported(in: staging) ? .reflink : .copy
        // On a terminal, a count first, so the progress line can say how much is left.
        let total = isatty(2) == 1 ? (try? TreeWalk.measure(home))?.files : nil
        let progress = Progress.onTerminal("promoting \(r.key) to base \(r.name)/\(generation) by \(method.rawValue)", total: total)
        defer { progress?.finish() }
        do {
            var home = CloneOptions(method: method)
            home.topLevel = SeedPolicy.baseEntries
            home.readOnly = true
            home.skipSymlinks = true
            home.progress = progress
            report.merge(try TreeClone.run(from: root.homePath(r.key, r.slot), into: staging + "/home", home))
            if r.withTarget {
                try FileSystem.makeDirectories(staging + "/target", mode: 0o755)
                var target = CloneOptions(method: method)
                target.readOnly = true
                target.skipSymlinks = true
                report.merge(try TreeClone.run(from: root.targetPath(r.key, r.slot), into: staging + "/target", target))
            }
            Freshness.freshen(slotDirectory: staging, home: staging + "/home")
            let manifest = BaseManifest(name: r.name.rawValue, generation: generation, key: r.key.rawValue, slot: r.slot, created: Clock.now(),
                                        with_target: r.withTarget, owner: Identity.effectiveUID, method: method.rawValue, files: report.files)
            try FileSystem.writeAtomically(staging + "/" + BaseStore.manifestFile, String(decoding: try encodeSorted(manifest), as: UTF8.self) + "\n", mode: 0o444)
            try dir.renameAt(BaseStore.stagingPrefix + String(getpid()), to: dir, String(generation))
        } catch {
            _ = try? TreeWalk.remove(staging)
            throw SiloError("cannot promote key '\(r.key)' to base '\(r.name)': \(error); nothing was published")
        }
        progress?.finish()
        let ref = BaseRef(name: r.name, generation: generation)
        log.info("promoted key '\(r.key)' slot \(r.slot) to base \(ref) (\(report.files) files by \(method.rawValue))")
        let retired = bases.generations(r.name).dropLast().map { "\(r.name)/\($0)" }
        return PromoteResult(base: ref.description, key: r.key.rawValue, slot: r.slot, method: method.rawValue, files: report.files,
                             directories: report.directories, skipped: report.skipped, retired: retired, seconds: Clock.monotonic() - t0)
    }

    /// Refuses a home cargo would fail on (or that would spread damage to every seeded cache).
    func verify(_ home: String, key: CacheKey) throws(SiloError) {
        let owner = (try? FileSystem.status(home)).flatMap { $0 }
        let result = try Verifier.run(VerifyOptions(home: home, target: nil, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0))
        let ownership: Set<ProblemKind> = [.foreignOwner, .unreadable, .unwritable]
        let bad = result.open.filter { $0.severity == .error && !ownership.contains($0.kind) }
        guard let first = bad.first else { return }
        throw SiloError("cannot promote: the cache of key '\(key)' has \(bad.count) problem(s) cargo would not repair, first \(first.kind.rawValue) at \(first.path); run silo verify --key \(key) --heal first, or pass --no-verify")
    }
}

func encodeSorted<T: Encodable>(_ value: T) throws(Errno) -> [UInt8] {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    do { return Array(try e.encode(value)) } catch { throw Errno(EINVAL, call: "encode") }
}
