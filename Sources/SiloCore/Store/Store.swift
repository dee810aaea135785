// The state store: what silo knows about each cache that the disk cannot say.
//
// One SQLite file in the root (no server). It is the source of truth for *when* a cache was last
// used: atime is off on most hosts and mtimes lie (extracted crate files keep their archive's 2006
// mtime). It is not the truth about *what exists*: the directories are. So a missing or corrupt
// database is moved aside and rebuilt from the directories on disk, with a warning, and last-use
// times are then estimated from the newest mtime among a cache's top-level entries.
//
// WAL with synchronous=NORMAL: a commit is an append to the log without fsync, so recording a use
// costs well under a millisecond. A crash may lose the last few uses, never corrupt the file.

import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

/// One cache as the store records it. JSON field names are part of `silo ls --json`'s contract.
public struct CacheRecord: Equatable, Sendable {
    public var key: CacheKey
    public var slot: Int
    public var created: Double
    public var lastUsed: Double
    public var uses: Int
    public var lastExit: Int?
    public var bytes: Int64?
    public var bytesMeasured: Double?
}

public final class Store {
    public let root: SiloRoot
    var db: SQLiteConnection
    /// Things worth telling the user that happened while opening (a rebuild), one line each.
    public private(set) var notices: [String] = []

    /// Schema version, kept in SQLite's user_version. A newer one than this is refused, not guessed at.
    static let schemaVersion: Int64 = 3
    /// How long a writer waits for another silo's write transaction before failing. Transactions
    /// are a few statements long, so 10 s only runs out when something holds the database wrongly.
    static let busyTimeoutMilliseconds: Int32 = 10_000

    public init(root: SiloRoot) throws(SiloError) {
        self.root = root
        let existed = (try? FileSystem.status(root.storePath)) != nil
        do {
            db = try SQLiteConnection(path: root.storePath, busyTimeoutMilliseconds: Self.busyTimeoutMilliseconds)
            // Per connection, not stored in the file: without it every commit fsyncs the WAL.
            try db.execute("PRAGMA synchronous=NORMAL")
            try migrate()
        } catch let e as SQLiteError where e.isCorruption {
            db = try Self.recover(root: root, reason: "corrupt (\(e.message))", notices: &notices)
            return
        } catch let e as SiloError {
            throw e
        } catch {
            throw SiloError("cannot open state store \(root.storePath): \(error)")
        }
        if !existed {
            let found = (try? Self.scanDisk(root)) ?? []
            if !found.isEmpty {
                do { try insertRebuilt(found) } catch { throw SiloError("cannot rebuild state store \(root.storePath): \(error)") }
                notices.append("state store \(root.storePath) was missing; rebuilt \(found.count) record(s) from the caches on disk (last-use times estimated from mtimes)")
            }
        }
    }

    func migrate() throws {
        let version = try db.query("PRAGMA user_version").first?.int(0) ?? 0
        if version == Self.schemaVersion { return }
        if version > Self.schemaVersion {
            throw SiloError("state store \(root.storePath) has schema version \(version); this silo knows versions up to \(Self.schemaVersion): upgrade silo")
        }
        try enableWAL()
        try db.transaction {
            // Each step brings a store of the version before it up to the next; IF NOT EXISTS makes
            // a step that a concurrent silo already applied harmless.
            try db.execute("""
                CREATE TABLE IF NOT EXISTS caches(
                    key TEXT NOT NULL,
                    slot INTEGER NOT NULL,
                    created REAL NOT NULL,
                    last_used REAL NOT NULL,
                    uses INTEGER NOT NULL DEFAULT 0,
                    last_exit INTEGER,
                    bytes INTEGER,
                    bytes_measured REAL,
                    PRIMARY KEY(key, slot)
                );
                CREATE TABLE IF NOT EXISTS tombstones(
                    name TEXT PRIMARY KEY,
                    key TEXT,
                    slot INTEGER,
                    what TEXT NOT NULL,
                    bytes INTEGER,
                    since REAL NOT NULL
                );
                CREATE TABLE IF NOT EXISTS reap_runs(
                    started REAL NOT NULL,
                    seconds REAL NOT NULL,
                    caches_deleted INTEGER NOT NULL,
                    files_deleted INTEGER NOT NULL,
                    bytes_freed INTEGER NOT NULL,
                    failures INTEGER NOT NULL
                );
                CREATE TABLE IF NOT EXISTS verify_runs(
                    started REAL NOT NULL,
                    key TEXT NOT NULL,
                    slot INTEGER NOT NULL,
                    errors INTEGER NOT NULL,
                    warnings INTEGER NOT NULL,
                    healed INTEGER NOT NULL,
                    remaining INTEGER NOT NULL
                );
                PRAGMA user_version = \(Self.schemaVersion);
                """)
        }
    }

    /// Switches a new store to WAL. The switch needs the database to itself, and SQLite answers
    /// SQLITE_BUSY at once, without its busy handler, when another first user holds it: so this
    /// retries for as long as the busy timeout, until one of them has made the switch.
    func enableWAL() throws {
        let deadline = Clock.monotonic() + Double(Self.busyTimeoutMilliseconds) / 1000
        while true {
            do {
                if try db.query("PRAGMA journal_mode").first?.text(0)?.lowercased() == "wal" { return }
                try db.execute("PRAGMA journal_mode=WAL")
                return
            } catch let e as SQLiteError where e.isBusy {
                if Clock.monotonic() >= deadline { throw e }
                Clock.sleep(seconds: 0.02)
            }
        }
    }

    /// Moves a broken database aside and builds a new one from the directories on disk. Serialized by
    /// `store.lock` so that concurrent silo processes that all notice the damage rebuild it once.
    static func recover(root: SiloRoot, reason: String, notices: inout [String]) throws(SiloError) -> SQLiteConnection {
        let lockPath = root.path + "/store.lock"
        let lock: FileDescriptor
        do {
            lock = try FileDescriptor.open(lockPath, [.readWrite, .create, .noFollow, .closeOnExec], mode: 0o644)
            try lock.lock(.exclusive)
        } catch { throw SiloError("cannot lock \(lockPath) to rebuild the state store: \(error)") }
        defer { lock.close() }
        // Another process may have rebuilt it while this one waited for the lock.
        if let db = try? SQLiteConnection(path: root.storePath, busyTimeoutMilliseconds: busyTimeoutMilliseconds),
           (try? db.query("SELECT count(*) FROM caches")) != nil {
            return db
        }
        let aside = root.storePath + ".broken-\(Int(Clock.now()))"
        for suffix in ["", "-wal", "-shm"] {
            if rename(root.storePath + suffix, aside + suffix) != 0 && errno != ENOENT {
                throw SiloError("cannot move broken state store \(root.storePath + suffix) aside: \(Errno.current("rename"))")
            }
        }
        do {
            let store = try Store(root: root)
            let found = try scanDisk(root)
            try store.insertRebuilt(found)
            notices.append("state store \(root.storePath) was \(reason); moved it to \(aside) and rebuilt \(found.count) record(s) from the caches on disk (last-use times estimated from mtimes)")
            return store.db
        } catch let e as SiloError {
            throw e
        } catch {
            throw SiloError("cannot rebuild state store \(root.storePath): \(error)")
        }
    }

    /// Every `caches/<key>/<slot>` directory, with times estimated from mtimes.
    static func scanDisk(_ root: SiloRoot) throws -> [CacheRecord] {
        var records: [CacheRecord] = []
        for name in (try? FileSystem.list(root.cachesPath)) ?? [] {
            guard let key = try? CacheKey(validating: name) else { continue }
            for slotName in (try? FileSystem.list(root.keyPath(key))) ?? [] {
                // Only complete caches: a slot directory without its marker is no cache (see CacheLayout).
                guard let slot = Int(slotName), slot > 0, CacheLayout.isComplete(root.slotPath(key, slot)),
                      let st = try FileSystem.status(root.slotPath(key, slot)) else { continue }
                var newest = st.modified
                for inner in ["home", "target", "home/.global-cache", "home/registry"] {
                    if let s = try? FileSystem.status(root.slotPath(key, slot) + "/" + inner) { newest = max(newest, s.modified) }
                }
                records.append(CacheRecord(key: key, slot: slot, created: Double(st.modified), lastUsed: Double(newest), uses: 0))
            }
        }
        return records
    }

    func insertRebuilt(_ records: [CacheRecord]) throws {
        try db.transaction {
            for r in records {
                try db.query("INSERT OR IGNORE INTO caches(key, slot, created, last_used, uses) VALUES(?,?,?,?,?)",
                             [.text(r.key.rawValue), .integer(Int64(r.slot)), .real(r.created), .real(r.lastUsed), .integer(Int64(r.uses))])
            }
        }
    }

    /// Runs `body`; when the database turns out corrupt midway, rebuilds it and runs `body` once more.
    @discardableResult
    func withRecovery<T>(_ body: () throws -> T) throws(SiloError) -> T {
        do {
            return try body()
        } catch let e as SQLiteError where e.isCorruption {
            db = try Self.recover(root: root, reason: "corrupt (\(e.message))", notices: &notices)
            do { return try body() } catch { throw SiloError("state store \(root.storePath): \(error)") }
        } catch let e as SiloError {
            throw e
        } catch {
            throw SiloError("state store \(root.storePath): \(error)")
        }
    }

    /// A job starts using a cache: counts the use and moves last-use to now, so that a job killed
    /// before it ends is still recorded as recent.
    public func recordStart(key: CacheKey, slot: Int, at now: Double) throws(SiloError) {
        try withRecovery {
            try db.query("""
                INSERT INTO caches(key, slot, created, last_used, uses) VALUES(?1, ?2, ?3, ?3, 1)
                ON CONFLICT(key, slot) DO UPDATE SET last_used = ?3, uses = uses + 1
                """, [.text(key.rawValue), .integer(Int64(slot)), .real(now)])
        }
    }

    /// A job ends: last-use moves to the end of the job, and its exit status is kept.
    public func recordEnd(key: CacheKey, slot: Int, at now: Double, exitStatus: Int32) throws(SiloError) {
        try withRecovery {
            try db.query("""
                INSERT INTO caches(key, slot, created, last_used, uses, last_exit) VALUES(?1, ?2, ?3, ?3, 1, ?4)
                ON CONFLICT(key, slot) DO UPDATE SET last_used = ?3, last_exit = ?4
                """, [.text(key.rawValue), .integer(Int64(slot)), .real(now), .integer(Int64(exitStatus))])
        }
    }

    /// A recorded lease ends: last use moves to now; the exit status is kept when known.
    public func recordRelease(key: CacheKey, slot: Int, at now: Double, exitStatus: Int32?) throws(SiloError) {
        if let exitStatus { return try recordEnd(key: key, slot: slot, at: now, exitStatus: exitStatus) }
        try withRecovery {
            try db.query("UPDATE caches SET last_used = ?3 WHERE key = ?1 AND slot = ?2", [.text(key.rawValue), .integer(Int64(slot)), .real(now)])
        }
    }

    public func recordSize(key: CacheKey, slot: Int, bytes: Int64, at now: Double) throws(SiloError) {
        try withRecovery {
            try db.query("UPDATE caches SET bytes = ?3, bytes_measured = ?4 WHERE key = ?1 AND slot = ?2",
                         [.text(key.rawValue), .integer(Int64(slot)), .integer(bytes), .real(now)])
        }
    }

    public func records() throws(SiloError) -> [CacheRecord] {
        try withRecovery {
            try db.query("SELECT key, slot, created, last_used, uses, last_exit, bytes, bytes_measured FROM caches ORDER BY key, slot").compactMap(Self.record)
        }
    }

    /// Adds records for cache directories the store does not know, so `ls` shows everything on disk.
    public func syncWithDisk() throws(SiloError) -> Int {
        let found: [CacheRecord]
        do { found = try Self.scanDisk(root) } catch { throw SiloError("cannot scan \(root.cachesPath): \(error)") }
        let known = Set(try records().map { "\($0.key.rawValue)/\($0.slot)" })
        let missing = found.filter { !known.contains("\($0.key.rawValue)/\($0.slot)") }
        if !missing.isEmpty { try withRecovery { try insertRebuilt(missing) } }
        return missing.count
    }

    /// The recorded last use of one cache, nil when there is no record.
    public func lastUsed(key: CacheKey, slot: Int) throws(SiloError) -> Double? {
        try withRecovery {
            try db.query("SELECT last_used FROM caches WHERE key = ?1 AND slot = ?2", [.text(key.rawValue), .integer(Int64(slot))]).first?.double(0)
        }
    }

    /// Forgets a cache whose directory is gone (or was tombstoned).
    public func dropRecord(key: CacheKey, slot: Int) throws(SiloError) {
        try withRecovery {
            try db.query("DELETE FROM caches WHERE key = ?1 AND slot = ?2", [.text(key.rawValue), .integer(Int64(slot))])
        }
    }

    /// A cache was renamed into the trash: its record goes, a tombstone takes its place until the
    /// files are gone. One transaction, so the store never shows both or neither.
    public func recordTombstone(name: String, key: CacheKey?, slot: Int?, what: String, bytes: Int64?, at now: Double) throws(SiloError) {
        try withRecovery {
            try db.transaction {
                if let key, let slot, what == "cache" {
                    try db.query("DELETE FROM caches WHERE key = ?1 AND slot = ?2", [.text(key.rawValue), .integer(Int64(slot))])
                }
                try db.query("INSERT OR REPLACE INTO tombstones(name, key, slot, what, bytes, since) VALUES(?,?,?,?,?,?)",
                             [.text(name), key.map { .text($0.rawValue) } ?? .null, slot.map { .integer(Int64($0)) } ?? .null,
                              .text(what), bytes.map { .integer($0) } ?? .null, .real(now)])
            }
        }
    }

    /// Tombstones whose trash entry is gone are dropped.
    public func dropTombstones(except present: Set<String>) throws(SiloError) {
        try withRecovery {
            for row in try db.query("SELECT name FROM tombstones") {
                guard let name = row.text(0), !present.contains(name) else { continue }
                try db.query("DELETE FROM tombstones WHERE name = ?", [.text(name)])
            }
        }
    }

    public func recordReap(started: Double, seconds: Double, cachesDeleted: Int, filesDeleted: Int, bytesFreed: Int64, failures: Int) throws(SiloError) {
        try withRecovery {
            try db.query("INSERT INTO reap_runs VALUES(?,?,?,?,?,?)",
                         [.real(started), .real(seconds), .integer(Int64(cachesDeleted)), .integer(Int64(filesDeleted)), .integer(bytesFreed), .integer(Int64(failures))])
        }
    }

    /// One `silo verify --key` run: problems found by severity, healed, and left open.
    public func recordVerify(key: CacheKey, slot: Int, started: Double, errors: Int, warnings: Int, healed: Int, remaining: Int) throws(SiloError) {
        try withRecovery {
            try db.query("INSERT INTO verify_runs VALUES(?,?,?,?,?,?,?)",
                         [.real(started), .text(key.rawValue), .integer(Int64(slot)), .integer(Int64(errors)), .integer(Int64(warnings)),
                          .integer(Int64(healed)), .integer(Int64(remaining))])
        }
    }

    /// Totals of the reap and verify runs recorded, for `silo metrics`.
    public struct RunTotals: Sendable {
        public var reapRuns = 0, reapCachesDeleted = 0, reapFilesDeleted = 0, reapFailures = 0
        public var reapBytesFreed: Int64 = 0
        public var lastReap: Double?
        public var verifyRuns = 0, verifyErrors = 0, verifyWarnings = 0, verifyHealed = 0, verifyRemaining = 0
        public var lastVerify: Double?
    }

    public func runTotals() throws(SiloError) -> RunTotals {
        try withRecovery {
            var t = RunTotals()
            if let r = try db.query("SELECT COUNT(*), COALESCE(SUM(caches_deleted),0), COALESCE(SUM(files_deleted),0), COALESCE(SUM(bytes_freed),0), COALESCE(SUM(failures),0), MAX(started) FROM reap_runs").first {
                t.reapRuns = Int(r.int(0) ?? 0); t.reapCachesDeleted = Int(r.int(1) ?? 0); t.reapFilesDeleted = Int(r.int(2) ?? 0)
                t.reapBytesFreed = r.int(3) ?? 0; t.reapFailures = Int(r.int(4) ?? 0); t.lastReap = r.double(5)
            }
            if let r = try db.query("SELECT COUNT(*), COALESCE(SUM(errors),0), COALESCE(SUM(warnings),0), COALESCE(SUM(healed),0), COALESCE(SUM(remaining),0), MAX(started) FROM verify_runs").first {
                t.verifyRuns = Int(r.int(0) ?? 0); t.verifyErrors = Int(r.int(1) ?? 0); t.verifyWarnings = Int(r.int(2) ?? 0)
                t.verifyHealed = Int(r.int(3) ?? 0); t.verifyRemaining = Int(r.int(4) ?? 0); t.lastVerify = r.double(5)
            }
            return t
        }
    }

    /// The records as they are, read without writing anything to the root (for --dry-run): the
    /// database opened immutable (as of its last checkpoint; silo holds no connection open during a
    /// job, so that is at most one start or end behind), else (missing, corrupt) estimated from the
    /// disk like a rebuild.
    public static func snapshot(root: SiloRoot) -> [CacheRecord] {
        if let db = try? SQLiteConnection(path: root.storePath, busyTimeoutMilliseconds: busyTimeoutMilliseconds, access: .immutable),
           let rows = try? db.query("SELECT key, slot, created, last_used, uses, last_exit, bytes, bytes_measured FROM caches ORDER BY key, slot") {
            let records = rows.compactMap(record)
            let known = Set(records.map { "\($0.key.rawValue)/\($0.slot)" })
            return records + ((try? scanDisk(root)) ?? []).filter { !known.contains("\($0.key.rawValue)/\($0.slot)") }
        }
        return (try? scanDisk(root)) ?? []
    }

    static func record(_ row: Row) -> CacheRecord? {
        guard let name = row.text(0), let key = try? CacheKey(validating: name) else { return nil }
        return CacheRecord(key: key, slot: Int(row.int(1) ?? 1), created: row.double(2) ?? 0, lastUsed: row.double(3) ?? 0,
                           uses: Int(row.int(4) ?? 0), lastExit: row.int(5).map { Int($0) }, bytes: row.int(6), bytesMeasured: row.double(7))
    }
}
