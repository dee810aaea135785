// `silo reap`: the mechanism that carries out ReapPolicy's plan.
//
// One run:
//   1. finish the trash: entries an interrupted reap (or exec) left are deleted first;
//   1b. report and drop recorded leases whose TTL ran out (RecordedLease);
//   2. sync the store with the disk: unknown cache directories get a record, records without a
//      directory are dropped, directories that are no cache (no `.silo-cache` marker, a name that
//      is no key or slot) are orphans;
//   3. measure every cache (home and target apart), note which are leased;
//   4. plan (pure: ReapPlanner) and carry the plan out. For each cache to delete: take the
//      collector's hold on the slot (`.use` exclusive, without waiting) -- a job that started
//      since the plan keeps its cache -- rename the slot into the trash, replace its record by a
//      tombstone, let the hold go, then delete the files in the trash;
//   5. orphans older than max-age go the same way; younger ones are reported;
//   6. retired base generations that no cache was seeded from any more, and staging directories
//      of killed promotions (BaseStore);
//   7. in caches that stay: target dirs over --max-target-size (whole, when not leased), crate
//      sources older than --max-src-age (under cargo's own lock).
// A cache's size for the budget is its unique bytes (what deleting it frees): the inodes it shares
// with a base are the base's, counted once in the root's total.
// A dry run does every read (measuring included) and no write: no store, no lock file, no rename.

import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

public struct ReapOptions: Sendable {
    public var policy = ReapPolicy()
    public var dryRun = false
    public var maxSrcAge: Double?
    public var maxTargetSize: Int64?
    public init() {}
}

/// What a reap did (or, dry, would do). Field names are the `--json` contract (docs/json.md).
public struct ReapReport: Sendable, Encodable {
    public struct Cache: Sendable, Encodable {
        public var key: String
        public var slot: Int
        /// deleted, would-delete, kept, failed
        public var action: String
        public var reason: String
        public var bytes: Int64
        public var last_used: Int64
        public var files: Int?
    }
    public struct Orphan: Sendable, Encodable {
        public var path: String
        public var action: String
        public var reason: String
    }
    public struct Target: Sendable, Encodable {
        public var key: String
        public var slot: Int
        public var action: String
        public var bytes: Int64
    }
    public struct Skip: Sendable, Encodable {
        public var key: String
        public var slot: Int
        public var reason: String
    }
    public struct Failure: Sendable, Encodable {
        public var path: String
        public var error: String
    }
    public struct Totals: Sendable, Encodable {
        public var caches_deleted = 0
        public var files_deleted = 0
        public var bytes_freed: Int64 = 0
        public var seconds = 0.0
    }

    public struct Base: Sendable, Encodable {
        /// NAME/GENERATION
        public var base: String
        /// deleted, would-delete, kept, failed
        public var action: String
        public var reason: String
        public var bytes: Int64
    }

    public struct ExpiredLease: Sendable, Encodable {
        public var holder: String
        public var key: String
        public var slot: Int
        public var expired: Double
        /// dropped, would-drop
        public var action: String
    }

    public var dry_run = false
    public var caches: [Cache] = []
    /// Recorded leases whose TTL ran out without a release.
    public var expired_leases: [ExpiredLease] = []
    public var bases: [Base] = []
    public var orphans: [Orphan] = []
    public var targets: [Target] = []
    public var crate_sources: [PrunedSource] = []
    public var skipped: [Skip] = []
    public var dropped_records: [String] = []
    public var trash_finished: [String] = []
    public var skipped_mounts: [String] = []
    public var failures: [Failure] = []
    public var root_bytes_before: Int64 = 0
    public var filesystem_bytes: Int64 = 0
    public var available_bytes_before: Int64 = 0
    public var available_bytes_after: Int64 = 0
    public var totals = Totals()

    /// 0 when everything chosen is gone, 1 when something could not be deleted (listed).
    public var exitCode: Int32 { failures.isEmpty && skipped_mounts.isEmpty ? 0 : ExitCode.failure }
}

public struct Reaper {
    public let root: SiloRoot
    public let log: Logger
    let trash: Trash
    let leases: LeaseManager

    public init(root: SiloRoot, log: Logger) {
        self.root = root
        self.log = log
        trash = Trash(root: root)
        leases = LeaseManager(root: root)
    }

    /// A cache directory found on disk.
    struct Found {
        var key: CacheKey
        var slot: Int
        var home: Int64 = 0
        var target: Int64 = 0
        /// Of home + target, what only this cache holds.
        var unique: Int64 = 0
        var leased = false
        var bytes: Int64 { home + target }
    }

    public func run(_ options: ReapOptions) throws(SiloError) -> ReapReport {
        let started = Clock.now()
        let t0 = Clock.monotonic()
        var report = ReapReport()
        report.dry_run = options.dryRun
        if options.dryRun {
            // A dry run of a root that does not exist yet must not create it.
            guard (try? FileSystem.status(root.path + "/" + SiloRoot.layoutFile)) != nil else { return report }
            _ = try root.readLayout()
        } else {
            try root.prepare()
        }
        let store: Store? = options.dryRun ? nil : try Store(root: root)
        for notice in store?.notices ?? [] { log.warning(notice) }

        // 1. Finish what an interrupted run left in the trash.
        finishTrash(&report, store: store, dryRun: options.dryRun)

        // 1b. Recorded leases that ran out: reported and dropped, so they stop counting as holders.
        let now0 = Clock.now()
        for r in leases.allRecords() where r.isExpired(at: now0) {
            report.expired_leases.append(.init(holder: r.holder, key: r.key, slot: r.slot, expired: r.expires, action: options.dryRun ? "would-drop" : "dropped"))
            if !options.dryRun {
                leases.dropRecord(r)
                log.warning("recorded lease '\(r.holder)' on \(r.key) slot \(r.slot) expired at \(formatTimestamp(r.expires)) without a release; dropped")
            }
        }

        // 2. What exists: caches, orphans; the store brought in line.
        let (found, orphans) = scanCaches()
        let records: [CacheRecord]
        if let store {
            _ = try store.syncWithDisk()
            let present = Set(found.map { "\($0.key.rawValue)/\($0.slot)" })
            for r in try store.records() where !present.contains("\(r.key.rawValue)/\(r.slot)") {
                try store.dropRecord(key: r.key, slot: r.slot)
                report.dropped_records.append("\(r.key)/\(r.slot)")
                log.info("dropped the record of \(r.key) slot \(r.slot): its directory is gone")
            }
            records = try store.records()
        } else {
            records = Store.snapshot(root: root)
        }
        let lastUse = Dictionary(records.map { ("\($0.key.rawValue)/\($0.slot)", $0.lastUsed) }, uniquingKeysWith: max)

        // 3. Measure; note leases.
        let now = Clock.now()
        var measured: [Found] = []
        for var f in found {
            let home = try? TreeWalk.measure(root.homePath(f.key, f.slot))
            let target = try? TreeWalk.measure(root.targetPath(f.key, f.slot))
            f.home = home?.bytes ?? 0
            f.target = target?.bytes ?? 0
            f.unique = (home?.uniqueBytes ?? 0) + (target?.uniqueBytes ?? 0)
            f.leased = leases.isLeased(key: f.key, slot: f.slot)
            if let store { try? store.recordSize(key: f.key, slot: f.slot, bytes: f.bytes, at: now) }
            measured.append(f)
        }
        let bases = BaseStore(root: root)
        // Each generation measured once: its disk bytes for the budget, its unique bytes for step 6.
        var baseWalks: [BaseRef: WalkReport] = [:]
        for name in bases.names() {
            for g in bases.generations(name) {
                let ref = BaseRef(name: name, generation: g)
                baseWalks[ref] = (try? TreeWalk.measure(bases.path(ref))) ?? WalkReport()
            }
        }
        let baseBytes = baseWalks.values.reduce(Int64(0)) { $0 + $1.diskBytes }
        report.root_bytes_before = measured.reduce(baseBytes) { $0 + $1.unique }
        let space = (try? FileSystem.space(root.path)) ?? (available: 0, total: 0)
        report.filesystem_bytes = space.total
        report.available_bytes_before = space.available

        // 4. Plan and carry it out.
        let candidates = measured.map {
            ReapCandidate(key: $0.key, slot: $0.slot, lastUsed: lastUse["\($0.key.rawValue)/\($0.slot)"] ?? now, bytes: $0.unique, leased: $0.leased)
        }
        let plan = ReapPlanner.plan(candidates, disk: DiskSpace(total: space.total, available: space.available, otherRootBytes: baseBytes),
                                    policy: options.policy, now: now)
        var deletedSlots = Set<String>()
        let deleting = plan.filter { $0.verdict.deletes }
        let progress = options.dryRun ? nil : Progress.onTerminal("reaping", total: deleting.count, unit: "caches")
        defer { progress?.finish() }
        for decision in plan {
            let c = decision.candidate
            var line = ReapReport.Cache(key: c.key.rawValue, slot: c.slot, action: "kept", reason: describe(decision.verdict, options.policy),
                                        bytes: c.bytes, last_used: Int64(c.lastUsed), files: nil)
            if decision.verdict == .keepLeased { line.reason += holderSummary(c.key, c.slot, dryRun: options.dryRun) }
            if decision.verdict.deletes {
                if options.dryRun {
                    line.action = "would-delete"
                } else {
                    switch try collect(root.slotPath(c.key, c.slot), key: c.key, slot: c.slot, label: "\(c.key).\(c.slot)", bytes: c.bytes,
                                       store: store, report: &report, plannedLastUse: c.lastUsed) {
                    case .deleted(let walk):
                        line.files = walk.files
                        deletedSlots.insert("\(c.key.rawValue)/\(c.slot)")
                        progress?.advance(bytes: c.bytes)
                        if walk.complete {
                            line.action = "deleted"
                            report.totals.caches_deleted += 1
                            report.totals.bytes_freed += c.bytes
                            log.info("deleted cache \(c.key) slot \(c.slot) (\(formatBytes(c.bytes)), \(line.reason))")
                        } else {
                            // Gone for every job (it is in the trash), but some files stay: listed in failures.
                            line.action = "tombstoned"
                            line.reason += "; moved to the trash, but not every file could be deleted"
                            log.warning("cache \(c.key) slot \(c.slot) is in the trash, but not every file could be deleted")
                        }
                    case .inUse:
                        line.action = "kept"
                        line.reason = "in use: leased or used since the plan was made"
                    case .failed:
                        line.action = "failed"
                    }
                }
            }
            report.caches.append(line)
        }

        // 5. Orphans.
        for orphan in orphans {
            collectOrphan(orphan, policy: options.policy, now: now, dryRun: options.dryRun, store: store, report: &report)
        }
        removeEmptyKeyDirectories(dryRun: options.dryRun)

        // 6. Bases: retired generations nobody shares any more; killed promotions.
        collectBases(remaining: measured.filter { !deletedSlots.contains("\($0.key.rawValue)/\($0.slot)") }, measuredBases: baseWalks,
                     dryRun: options.dryRun, report: &report)

        // 7. Inside the caches that stay.
        for f in measured where !deletedSlots.contains("\(f.key.rawValue)/\(f.slot)") {
            if let limit = options.maxTargetSize, f.target > limit {
                pruneTarget(f, dryRun: options.dryRun, store: store, report: &report)
            }
            if let maxSrcAge = options.maxSrcAge {
                pruneSources(f, maxAge: maxSrcAge, now: now, dryRun: options.dryRun, store: store, report: &report)
            }
        }

        report.available_bytes_after = (try? FileSystem.space(root.path))?.available ?? 0
        report.totals.seconds = Clock.monotonic() - t0
        if let store {
            try? store.recordReap(started: started, seconds: report.totals.seconds, cachesDeleted: report.totals.caches_deleted,
                                  filesDeleted: report.totals.files_deleted, bytesFreed: report.totals.bytes_freed, failures: report.failures.count)
        }
        return report
    }

    enum Collected {
        case deleted(WalkReport)
        case inUse
        case failed
    }

    /// Tombstones `path` under the collector's hold on the slot, then deletes it in the trash.
    func collect(_ path: String, key: CacheKey, slot: Int, label: String, bytes: Int64?, store: Store?,
                 report: inout ReapReport, what: String = "cache", recreate: String? = nil, plannedLastUse: Double? = nil) throws(SiloError) -> Collected {
        guard let hold = try leases.tryCollect(key: key, slot: slot) else { return .inUse }
        // A job may have run and ended between the plan and the hold: then the plan's age is stale.
        if let planned = plannedLastUse, let recorded = try? store?.lastUsed(key: key, slot: slot), recorded > planned {
            hold.close()
            return .inUse
        }
        let name: String
        do {
            defer { hold.close() }
            do {
                name = try trash.tombstone(path, label: label)
            } catch {
                report.failures.append(.init(path: path, error: "\(error)"))
                log.error("cannot move \(path) into the trash: \(error)")
                return .failed
            }
            try? store?.recordTombstone(name: name, key: key, slot: slot, what: what, bytes: bytes, at: Clock.now())
            if let recreate {
                do { try FileSystem.makeDirectories(recreate) } catch {
                    report.failures.append(.init(path: recreate, error: "\(error)"))
                }
            }
        }
        return .deleted(purge(name, store: store, report: &report))
    }

    /// Deletes one trash entry, recording what could not go.
    func purge(_ name: String, store: Store?, report: inout ReapReport) -> WalkReport {
        let walk: WalkReport
        do { walk = try trash.purge(name) } catch {
            report.failures.append(.init(path: root.trashPath + "/" + name, error: "\(error)"))
            return WalkReport()
        }
        report.totals.files_deleted += walk.files
        report.skipped_mounts += walk.skippedMounts
        for m in walk.skippedMounts { log.warning("left \(m) alone: it is a mount point; unmount it, the next reap finishes the trash") }
        for f in walk.failures {
            report.failures.append(.init(path: f.path, error: "\(f.error.call): \(f.error.message) (os error \(f.error.code))"))
            log.error("cannot delete \(f)")
        }
        if walk.complete { try? store?.dropTombstones(except: Set(trash.entries())) }
        return walk
    }

    func finishTrash(_ report: inout ReapReport, store: Store?, dryRun: Bool) {
        let entries = trash.entries()
        for name in entries {
            if dryRun {
                report.trash_finished.append(name)
                continue
            }
            let walk = purge(name, store: store, report: &report)
            if walk.complete { report.trash_finished.append(name) }
            log.info("finished deleting trash entry \(name) (\(walk.files) files)")
        }
        try? store?.dropTombstones(except: Set(trash.entries()))
    }

    /// Retired generations (not the newest of their name) that no remaining cache names in its
    /// marker go, under an exclusive hold of the generation (a seeding holds it shared); the newest
    /// generation of every name stays. Staging directories of dead promoters go too.
    func collectBases(remaining: [Found], measuredBases: [BaseRef: WalkReport], dryRun: Bool, report: inout ReapReport) {
        let bases = BaseStore(root: root)
        var users: [BaseRef: Int] = [:]
        for f in remaining {
            if let ref = CacheLayout.base(ofSlot: root.slotPath(f.key, f.slot)) { users[ref, default: 0] += 1 }
        }
        for name in bases.names() {
            let generations = bases.generations(name)
            for (i, g) in generations.enumerated() {
                let ref = BaseRef(name: name, generation: g)
                let bytes = measuredBases[ref]?.uniqueBytes ?? (try? TreeWalk.measure(bases.path(ref)))?.uniqueBytes ?? 0
                var line = ReapReport.Base(base: ref.description, action: "kept", reason: "", bytes: bytes)
                if i == generations.count - 1 {
                    line.reason = "the current generation of \(name)"
                } else if let n = users[ref] {
                    line.reason = "retired; \(n) cache\(n == 1 ? "" : "s") seeded from it still share its files"
                } else if dryRun {
                    line.action = "would-delete"
                    line.reason = "retired and no cache shares its files"
                } else if let hold = bases.tryHoldExclusive(ref) {
                    line.reason = "retired and no cache shares its files"
                    let name: String
                    do {
                        defer { hold.close() }
                        name = try trash.tombstone(bases.path(ref), label: "base-\(ref.name).\(ref.generation)")
                    } catch {
                        line.action = "failed"
                        report.failures.append(.init(path: bases.path(ref), error: "\(error)"))
                        report.bases.append(line)
                        continue
                    }
                    let walk = purge(name, store: nil, report: &report)
                    line.action = walk.complete ? "deleted" : "failed"
                    if walk.complete { report.totals.bytes_freed += bytes }
                    log.info("deleted retired base \(ref) (\(formatBytes(bytes)))")
                } else {
                    line.reason = "retired, but a cache is being seeded from it"
                }
                report.bases.append(line)
            }
        }
        for staging in bases.abandonedStaging() {
            if dryRun {
                report.orphans.append(.init(path: staging, action: "would-delete", reason: "staging directory of a killed promotion"))
                continue
            }
            do {
                let walk = try trash.delete(staging, label: "base-staging")
                report.orphans.append(.init(path: staging, action: walk.complete ? "deleted" : "failed", reason: "staging directory of a killed promotion"))
                report.totals.files_deleted += walk.files
            } catch {
                report.failures.append(.init(path: staging, error: "\(error)"))
            }
        }
    }

    /// An entry under caches/ that is no usable cache.
    struct OrphanEntry {
        var path: String
        var key: CacheKey?
        var slot: Int?
        var reason: String
        /// A staging directory of a creation that may still be running.
        var creatorPID: Int32?
    }

    func scanCaches() -> ([Found], [OrphanEntry]) {
        var found: [Found] = []
        var orphans: [OrphanEntry] = []
        for name in ((try? FileSystem.list(root.cachesPath)) ?? []).sorted() {
            let keyPath = root.cachesPath + "/" + name
            guard let key = try? CacheKey(validating: name) else {
                orphans.append(OrphanEntry(path: keyPath, reason: "not a valid key name"))
                continue
            }
            guard (try? FileSystem.status(keyPath))??.isDirectory == true else {
                orphans.append(OrphanEntry(path: keyPath, reason: "not a directory"))
                continue
            }
            for slotName in ((try? FileSystem.list(keyPath)) ?? []).sorted() {
                let path = keyPath + "/" + slotName
                if slotName.hasPrefix(".new-") {
                    let pid = slotName.split(separator: "-").last.flatMap { Int32($0) }
                    orphans.append(OrphanEntry(path: path, key: key, reason: "staging directory of an interrupted creation", creatorPID: pid))
                    continue
                }
                guard let slot = Int(slotName), slot > 0, String(slot) == slotName else {
                    orphans.append(OrphanEntry(path: path, key: key, reason: "not a slot number"))
                    continue
                }
                // lstat: a slot that is a symlink is no cache, and nothing is ever resolved through it.
                guard (try? FileSystem.status(path))??.isDirectory == true else {
                    orphans.append(OrphanEntry(path: path, key: key, slot: slot, reason: "not a directory (a symlink or a file)"))
                    continue
                }
                guard CacheLayout.isComplete(path) else {
                    orphans.append(OrphanEntry(path: path, key: key, slot: slot, reason: "no \(CacheLayout.marker) marker (made outside silo, e.g. by docker, or a creation was killed)"))
                    continue
                }
                found.append(Found(key: key, slot: slot))
            }
        }
        return (found, orphans)
    }

    func collectOrphan(_ o: OrphanEntry, policy: ReapPolicy, now: Double, dryRun: Bool, store: Store?, report: inout ReapReport) {
        if let pid = o.creatorPID, Identity.processExists(pid) {
            report.orphans.append(.init(path: o.path, action: "kept", reason: o.reason + "; its creator (pid \(pid)) is still running"))
            return
        }
        let age = now - newestModification(o.path)
        guard age > policy.maxAge || o.creatorPID != nil else {
            report.orphans.append(.init(path: o.path, action: "kept", reason: o.reason + "; collected once older than max-age \(formatDuration(policy.maxAge)) (modified \(formatDuration(age)) ago)"))
            log.warning("\(o.path) is not a silo cache (\(o.reason)); it will be collected once older than \(formatDuration(policy.maxAge))")
            return
        }
        if dryRun {
            report.orphans.append(.init(path: o.path, action: "would-delete", reason: o.reason))
            return
        }
        let label = "orphan." + (o.path.split(separator: "/").suffix(2).joined(separator: "."))
        if let key = o.key, let slot = o.slot {
            switch (try? collect(o.path, key: key, slot: slot, label: label, bytes: nil, store: store, report: &report, what: "orphan")) ?? .failed {
            case .deleted(let w):
                report.orphans.append(.init(path: o.path, action: "deleted", reason: o.reason + " (\(w.files) files)"))
            case .inUse:
                report.orphans.append(.init(path: o.path, action: "kept", reason: o.reason + "; its slot is leased"))
            case .failed:
                report.orphans.append(.init(path: o.path, action: "failed", reason: o.reason))
            }
            return
        }
        do {
            let name = try trash.tombstone(o.path, label: label)
            try? store?.recordTombstone(name: name, key: o.key, slot: nil, what: "orphan", bytes: nil, at: Clock.now())
            let w = purge(name, store: store, report: &report)
            report.orphans.append(.init(path: o.path, action: "deleted", reason: o.reason + " (\(w.files) files)"))
            log.info("deleted orphan \(o.path) (\(o.reason))")
        } catch {
            report.failures.append(.init(path: o.path, error: "\(error)"))
            report.orphans.append(.init(path: o.path, action: "failed", reason: o.reason))
        }
    }

    /// The newest mtime of a directory and its immediate entries: the best "last use" an unknown
    /// directory has (crate files inside keep their archive's 2006 mtime, so never deeper).
    func newestModification(_ path: String) -> Double {
        var newest = (try? FileSystem.status(path))??.modified ?? 0
        for name in (try? FileSystem.list(path)) ?? [] {
            if let st = try? FileSystem.status(path + "/" + name) { newest = max(newest, st.modified) }
        }
        return Double(newest)
    }

    func pruneTarget(_ f: Found, dryRun: Bool, store: Store?, report: inout ReapReport) {
        if f.leased {
            report.targets.append(.init(key: f.key.rawValue, slot: f.slot, action: "kept: leased", bytes: f.target))
            return
        }
        if dryRun {
            report.targets.append(.init(key: f.key.rawValue, slot: f.slot, action: "would-delete", bytes: f.target))
            return
        }
        let target = root.targetPath(f.key, f.slot)
        let result = (try? collect(target, key: f.key, slot: f.slot, label: "target.\(f.key).\(f.slot)", bytes: f.target,
                                   store: store, report: &report, what: "target", recreate: target)) ?? .failed
        switch result {
        case .deleted:
            report.targets.append(.init(key: f.key.rawValue, slot: f.slot, action: "deleted", bytes: f.target))
            report.totals.bytes_freed += f.target
            log.info("deleted the target dir of \(f.key) slot \(f.slot) (\(formatBytes(f.target)))")
        case .inUse:
            report.targets.append(.init(key: f.key.rawValue, slot: f.slot, action: "kept: leased", bytes: f.target))
        case .failed:
            report.targets.append(.init(key: f.key.rawValue, slot: f.slot, action: "failed", bytes: f.target))
        }
    }

    func pruneSources(_ f: Found, maxAge: Double, now: Double, dryRun: Bool, store: Store?, report: inout ReapReport) {
        let outcome: CrateSourcePruner.Outcome
        do {
            outcome = try CrateSourcePruner.prune(home: root.homePath(f.key, f.slot), key: f.key, slot: f.slot, maxAge: maxAge, now: now, trash: trash, dryRun: dryRun)
        } catch {
            report.failures.append(.init(path: root.homePath(f.key, f.slot), error: error.message))
            return
        }
        switch outcome {
        case .skipped(let reason):
            report.skipped.append(.init(key: f.key.rawValue, slot: f.slot, reason: reason))
            log.info("crate sources of \(f.key) slot \(f.slot) skipped: \(reason)")
        case .pruned(let sources, let entries):
            report.crate_sources += sources
            for name in entries {
                try? store?.recordTombstone(name: name, key: f.key, slot: f.slot, what: "crate-source", bytes: nil, at: Clock.now())
                _ = purge(name, store: store, report: &report)
            }
            if !sources.isEmpty { log.info("deleted \(entries.count) unused crate source dir(s) of \(f.key) slot \(f.slot)") }
        }
    }

    /// caches/<key> directories left empty: rmdir only succeeds on an empty one.
    func removeEmptyKeyDirectories(dryRun: Bool) {
        guard !dryRun else { return }
        for name in (try? FileSystem.list(root.cachesPath)) ?? [] where (try? CacheKey(validating: name)) != nil {
            _ = rmdir(root.cachesPath + "/" + name)
        }
    }

    func holderSummary(_ key: CacheKey, _ slot: Int, dryRun: Bool) -> String {
        guard let h = leases.holders(key: key, slot: slot, prune: !dryRun).first else { return "" }
        return " by " + h.summary
    }

    func describe(_ v: ReapVerdict, _ p: ReapPolicy) -> String {
        switch v {
        case .deleteAge(let age): return "unused for \(formatDuration(age)), longer than max-age \(formatDuration(p.maxAge))"
        case .deleteSize(let total): return "root holds \(formatBytes(total)), more than max-size \(formatBytes(p.maxSize ?? 0)); least recently used"
        case .deleteFree(let free, let wanted): return "filesystem has \(formatBytes(free)) free, less than min-free \(p.minFree) (\(formatBytes(wanted))); least recently used"
        case .keepLeased: return "in use"
        case .keepPattern(let pattern): return "protected by --keep \(pattern)"
        case .keepWithinBudget: return "within budget"
        }
    }
}
