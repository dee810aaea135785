// Making a key's cache ready for a job, under a lease the caller holds: created when missing
// (seeded from a base, owned by the job's user), the cargo config carried in, the use recorded.
// `silo exec` does this around the job it runs; `silo mount`, `env`, `lease acquire` and the runner
// hooks do it for a job that something else starts (a container, a runner), which is why the mount
// sources must exist -- and be the runner's -- before that job exists: docker makes a missing mount
// source as root.

import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

public struct ProvisionRequest: Sendable {
    public var key: CacheKey
    public var from: BaseChoice = .automatic
    public var seedMethod: SeedMethod?
    /// The uid:gid the job runs as; nil: silo's own.
    public var user: (uid: UInt32, gid: UInt32)?
    public var cargoConfig: String?
    public var withCredentials = false
    public var environment: [String: String]

    public init(key: CacheKey, environment: [String: String]) {
        self.key = key
        self.environment = environment
    }

    var jobUID: UInt32 { user?.uid ?? Identity.realUID }
}

public struct Provisioner {
    public let root: SiloRoot
    public let log: Logger

    public init(root: SiloRoot, log: Logger) {
        self.root = root
        self.log = log
    }

    /// Checks what can be checked before any lease or cache exists.
    public func check(_ r: ProvisionRequest) throws(SiloError) -> (Seeder, CargoConfigSource) {
        if let user = r.user, user.uid != Identity.effectiveUID, Identity.effectiveUID != 0 {
            throw SiloError.usage("--user \(user.uid):\(user.gid) needs silo to run as root (it runs as uid \(Identity.effectiveUID)); leave --user out to use your own uid")
        }
        try root.prepare()
        let seeder = Seeder(root: root, choice: r.from, method: r.seedMethod, jobUID: r.jobUID, owner: r.user)
        try seeder.check()
        return (seeder, try CargoConfigSource.locate(explicit: r.cargoConfig, environment: r.environment, root: root))
    }

    /// Makes slot `slot` of the key ready. Call it with the slot's lease held.
    @discardableResult
    public func prepare(_ r: ProvisionRequest, slot: Int, seeder: Seeder, config: CargoConfigSource, store: Store?) throws(SiloError) -> CachePaths {
        let layout = CacheLayout(root: root)
        if let created = try layout.ensure(r.key, slot, seeder: seeder, owner: r.user) {
            if let s = created.seeded {
                let c = s.report
                log.info("created cache key '\(r.key)' slot \(slot) from base \(s.base) by \(s.method.rawValue): "
                    + "\(c.linked + c.reflinked) files shared, \(c.copied) copied (\(formatBytes(c.bytesCopied))) in \(String(format: "%.2f", s.seconds)) s")
            } else {
                log.info("created cache key '\(r.key)' slot \(slot)")
            }
        }
        let paths = layout.paths(r.key, slot)
        // A TTL sweep must see these sources as in use (Freshness); under the lease, before the job.
        if let n = Freshness.freshen(slotDirectory: paths.slotDirectory, home: paths.home), n > 0 {
            log.info("set \(n) source files of key '\(r.key)' slot \(slot) to the time of use, so mtime-based sweeps see them in use")
        }
        try config.install(into: paths.home, withCredentials: r.withCredentials)
        if let user = r.user { try giveTopLevel(paths, to: user) }
        try store?.recordStart(key: r.key, slot: slot, at: Clock.now())
        return paths
    }

    /// The directories a container mounts, the lock files and the carried config, given to the
    /// job's user (silo as root). What lies deeper is left to `silo fix-owner`: walking a whole
    /// cache on every job start would cost what seeding saved.
    func giveTopLevel(_ p: CachePaths, to user: (uid: UInt32, gid: UInt32)) throws(SiloError) {
        for path in [p.home, p.target, p.home + "/registry", p.home + "/git", p.home + "/.package-cache", p.home + "/.package-cache-mutate",
                     p.home + "/config.toml", p.home + "/credentials.toml"] {
            guard let st = (try? FileSystem.status(path)) ?? nil, !st.isSymlink else { continue }
            if st.uid == user.uid && st.gid == user.gid { continue }
            do { try FileDescriptor.cwd.changeOwnerAt(path, uid: user.uid, gid: user.gid) } catch {
                throw SiloError("cannot give \(path) to uid \(user.uid): \(error)")
            }
        }
    }
}

/// A cache made ready for a job silo does not run.
public struct Attachment: Sendable, Encodable {
    public var key: String
    public var slot: Int
    public var home: String
    public var target: String
    /// The recorded lease holding it, when one was taken.
    public var holder: String?
    public var expires: Double?
}

extension Provisioner {
    /// Makes the key's cache ready under a lease of `mode`: a recorded lease for `holder` (kept
    /// after silo exits, until released or `ttl` runs out), or, without a holder, a lease held just
    /// while the cache is made ready -- enough for the paths to exist, not to keep a collector off.
    public func attach(_ r: ProvisionRequest, mode: ShareMode, wait: Double?, holder: HolderID?, ttl: Double?) throws(SiloError) -> Attachment {
        let (seeder, config) = try check(r)
        let store = try Store(root: root)
        for notice in store.notices { log.warning(notice) }
        let leases = LeaseManager(root: root)
        let onBusy: ([HolderInfo]) -> Void = { blockers in
            let who = blockers.first.map { "held by \($0.summary)" } ?? "held by another job"
            log.info("key '\(r.key)' is busy (\(who)); waiting" + (wait.map { " up to \(formatDuration($0))" } ?? ""))
        }
        if let holder {
            var paths: CachePaths?
            let record = try leases.acquireRecorded(key: r.key, mode: mode, holder: holder, ttl: ttl ?? 0, wait: wait, onBusy: onBusy) { slot throws(SiloError) in
                paths = try prepare(r, slot: slot, seeder: seeder, config: config, store: store)
            }
            let p = paths!
            log.info("recorded lease '\(record.holder)' holds key '\(r.key)' slot \(record.slot) until \(formatTimestamp(record.expires))")
            return Attachment(key: r.key.rawValue, slot: record.slot, home: p.home, target: p.target, holder: record.holder, expires: record.expires)
        }
        let lease = try leases.acquire(key: r.key, mode: mode, wait: wait, command: "silo attach", onBusy: onBusy)
        defer { lease.release() }
        let p = try prepare(r, slot: lease.slot, seeder: seeder, config: config, store: store)
        return Attachment(key: r.key.rawValue, slot: lease.slot, home: p.home, target: p.target, holder: nil, expires: nil)
    }

    /// Ends a recorded lease: the record goes and the end of the use is recorded. Nil when the
    /// holder has none.
    public func release(holder: HolderID, exitStatus: Int32?) throws(SiloError) -> RecordedLease? {
        let leases = LeaseManager(root: root)
        guard let record = leases.allRecords().first(where: { $0.holder == holder.rawValue }) else { return nil }
        for r in leases.allRecords() where r.holder == holder.rawValue { leases.dropRecord(r) }
        if let key = try? CacheKey(validating: record.key) {
            try? Store(root: root).recordRelease(key: key, slot: record.slot, at: Clock.now(), exitStatus: exitStatus)
        }
        return record
    }
}
