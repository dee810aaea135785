// Recorded leases: a lease for work that silo does not parent -- a `docker run` step, a job that a
// GitHub runner hook announced -- so no process of silo's can hold a flock for it.
//
//   <root>/locks/<key>/<slot>.recorded/<holder>   JSON: holder, key, slot, mode, uid, acquired, expires
//
// A record counts as a holder until it is released or its TTL runs out; the TTL is what makes a
// forgotten release (a runner that crashed, a workflow that never reached its last step) harmless:
// the lease expires instead of pinning the cache forever, and reap reports and drops the record.
//
// Records and flocks exclude each other through the flocks: a recorded lease is written while its
// acquirer holds the same flocks a job of that mode would (and they are then let go), every flock
// acquirer checks the records after taking its flocks and backs off from a conflicting one, and the
// collector checks them while it holds `.use` exclusive. So a record can never appear between the
// collector's check and its tombstoning, and two locked holders -- a job and a record, or two
// records -- are never granted together.

import SiloSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The id of a recorded lease's holder: what `release` names it by.
public struct HolderID: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String
    public static let maxLength = 128
    public var description: String { rawValue }

    public init(validating text: String) throws(SiloError) {
        guard !text.isEmpty else { throw .usage("--holder '' is empty; expected an id like gh-12345-1-build ([A-Za-z0-9._-], up to \(Self.maxLength))") }
        guard text.unicodeScalars.count <= Self.maxLength else {
            throw .usage("--holder '\(displayable(String(text.prefix(40))))...' is \(text.unicodeScalars.count) characters; expected at most \(Self.maxLength)")
        }
        if let bad = text.unicodeScalars.first(where: { !CacheKey.isAllowed($0) }) {
            throw .usage("--holder '\(displayable(text))' contains \(CacheKey.describe(bad)); expected [A-Za-z0-9._-]")
        }
        if text.hasPrefix(".") || text.hasPrefix("-") { throw .usage("--holder '\(displayable(text))' starts with '\(text.first!)'; expected a letter or digit first") }
        rawValue = text
    }

    /// A holder id made from any text (a runner name, a job id): disallowed characters become '-'.
    public static func sanitized(_ text: String) -> HolderID? {
        var s = String(String.UnicodeScalarView(text.unicodeScalars.map { CacheKey.isAllowed($0) ? $0 : "-" }).prefix(maxLength))
        while s.hasPrefix(".") || s.hasPrefix("-") { s.removeFirst() }
        return try? HolderID(validating: s)
    }
}

public struct RecordedLease: Codable, Sendable, Equatable {
    public var holder: String
    public var key: String
    public var slot: Int
    public var mode: String
    public var uid: UInt32
    public var acquired: Double
    public var expires: Double

    public func isExpired(at now: Double) -> Bool { now >= expires }

    var info: HolderInfo {
        HolderInfo(pid: 0, jobPid: nil, uid: uid, mode: mode, command: "recorded lease '\(holder)'", since: acquired, holder: holder, expires: expires)
    }

    /// Whether a holder in `held` mode excludes a newcomer in `wanted` mode on the same slot: the
    /// same rules as the flocks (ShareMode doc in Lease.swift).
    public static func conflicts(held: ShareMode, wanted: ShareMode) -> Bool {
        switch (held, wanted) {
        case (.shared, .shared), (.shared, .locked), (.locked, .shared): return false
        default: return true
        }
    }
}

extension LeaseManager {
    func recordedPath(_ key: CacheKey, _ slot: Int) -> String { lockPath(key, slot, "recorded") }

    /// The records of a slot, expired ones included (the caller decides), oldest first.
    public func records(key: CacheKey, slot: Int) -> [RecordedLease] {
        let dir = recordedPath(key, slot)
        return ((try? FileSystem.list(dir)) ?? []).compactMap { name -> RecordedLease? in
            guard let text = (try? FileSystem.read(dir + "/" + name)) ?? nil else { return nil }
            return try? JSONDecoder().decode(RecordedLease.self, from: Data(text.utf8))
        }.sorted { $0.acquired < $1.acquired }
    }

    /// Unexpired records of a slot.
    public func liveRecords(key: CacheKey, slot: Int, now: Double = Clock.now()) -> [RecordedLease] {
        records(key: key, slot: slot).filter { !$0.isExpired(at: now) }
    }

    /// Every record under the root, with the key it is under.
    public func allRecords() -> [RecordedLease] {
        var out: [RecordedLease] = []
        for name in ((try? FileSystem.list(root.locksPath)) ?? []).sorted() {
            guard let key = try? CacheKey(validating: name) else { continue }
            for entry in (try? FileSystem.list(root.lockDirectory(key))) ?? [] where entry.hasSuffix(".recorded") {
                guard let slot = Int(entry.dropLast(".recorded".count)) else { continue }
                out += records(key: key, slot: slot)
            }
        }
        return out
    }

    /// Removes one record (released, or expired and reported). Returns whether it was there.
    @discardableResult
    public func dropRecord(_ r: RecordedLease) -> Bool {
        guard let key = try? CacheKey(validating: r.key), let holder = try? HolderID(validating: r.holder) else { return false }
        return unlink(recordedPath(key, r.slot) + "/" + holder.rawValue) == 0
    }

    /// Takes a recorded lease for `holder`: the flocks of `mode` are taken (waiting like a job
    /// would), the cache made sure of by `prepare` while they are held, the record written, and the
    /// flocks let go. The same holder acquiring the same key again renews its record.
    public func acquireRecorded(key: CacheKey, mode: ShareMode, holder: HolderID, ttl: Double, wait: Double?,
                                onBusy: ([HolderInfo]) -> Void, prepare: (Int) throws(SiloError) -> Void) throws(SiloError) -> RecordedLease {
        if let other = allRecords().first(where: { $0.holder == holder.rawValue && $0.key != key.rawValue && !$0.isExpired(at: Clock.now()) }) {
            throw SiloError("holder '\(holder)' already holds key '\(other.key)' slot \(other.slot); release it first (silo lease release --holder \(holder)) or use another --holder", exitCode: ExitCode.usage)
        }
        let lease = try acquire(key: key, mode: mode, wait: wait, command: "recorded lease '\(holder)'", renewing: holder, onBusy: onBusy)
        defer { lease.release() }
        try prepare(lease.slot)
        let now = Clock.now()
        let record = RecordedLease(holder: holder.rawValue, key: key.rawValue, slot: lease.slot, mode: mode.rawValue, uid: geteuid(), acquired: now, expires: now + ttl)
        // A renewal in another slot (private): the old record goes.
        for old in allRecords() where old.holder == holder.rawValue && old.slot != lease.slot { dropRecord(old) }
        let dir = recordedPath(key, lease.slot)
        do {
            try FileSystem.makeDirectories(dir, mode: 0o755)
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys]
            try FileSystem.writeAtomically(dir + "/" + holder.rawValue, String(decoding: try e.encode(record), as: UTF8.self) + "\n")
        } catch {
            throw SiloError("cannot write the recorded lease \(dir)/\(holder): \(error)")
        }
        return record
    }
}
