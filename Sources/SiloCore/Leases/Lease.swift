// Leases: who is using a cache right now.
//
// A lease is a set of flock(2) locks held for the whole life of a job. The kernel drops them when
// the last descriptor closes, so a lease can never go stale: no pid files to reap, no TTLs to guess.
// The descriptors are inherited by the job (FD_CLOEXEC cleared before spawn). So if silo itself is
// SIGKILLed while the build goes on, the lease lives exactly as long as the build's processes do:
// the collector never deletes a cache under a running build, and the next `locked` job of the key
// waits for the orphaned build instead of racing it. The price: a daemon the job leaves behind
// (an sccache server, say) that inherits the descriptor keeps the cache leased until it exits.
//
// Per slot, in <root>/locks/<key>/ (never inside the cache, so tombstoning a cache moves no lock):
//   <slot>.use   every holder: shared. The collector takes it exclusive (non-blocking) to know a cache
//                is idle and to keep it idle while it tombstones it.
//   <slot>.excl  exclusive for `locked` and `private` holders: locked jobs of a key run one at a time.
//   <slot>.priv  exclusive for `private` holders, shared for `shared` holders: a shared job never
//                joins a private one, and a private job never takes a slot that a shared job is in.
//   <slot>.holders/<silo-pid>   who holds it (pid, job pid, uid, mode, command, since): information
//                only, for the "waiting for ..." message and `silo ls`; the locks are the truth.
//   <slot>.recorded/<holder>    recorded leases, for work silo does not parent (RecordedLease.swift):
//                holders with a TTL instead of a process.
//
// Modes:
//   locked  (default) slot 1; waits for the other locked/private holder. Runs beside shared holders,
//           which chose to rely on cargo's own locks.
//   private the lowest slot with no locked, private or shared holder; slots are reused when free.
//   shared  slot 1, beside whoever holds it, same uid only; waits only for a private holder.

import SiloSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum ShareMode: String, CaseIterable, Sendable {
    case locked, `private`, shared
}

/// What a holder file says about one holder of a lease.
public struct HolderInfo: Codable, Equatable, Sendable {
    public var pid: Int32
    public var jobPid: Int32?
    public var uid: UInt32
    public var mode: String
    public var command: String
    public var since: Double
    /// A recorded lease's holder id (RecordedLease); nil for a job silo runs.
    public var holder: String?
    /// When a recorded lease expires.
    public var expires: Double?

    public init(pid: Int32, jobPid: Int32?, uid: UInt32, mode: String, command: String, since: Double, holder: String? = nil, expires: Double? = nil) {
        self.pid = pid
        self.jobPid = jobPid
        self.uid = uid
        self.mode = mode
        self.command = command
        self.since = since
        self.holder = holder
        self.expires = expires
    }

    enum CodingKeys: String, CodingKey {
        case pid, uid, mode, command, since, holder, expires
        case jobPid = "job_pid"
    }

    /// A holder is alive while silo or the job it started is: silo may have been killed mid-build.
    public var isAlive: Bool {
        Identity.processExists(pid) || (jobPid.map { Identity.processExists($0) } ?? false)
    }

    public var summary: String {
        if let holder, let expires { return "recorded lease '\(holder)' until \(formatTimestamp(expires))" }
        return "pid \(jobPid ?? pid) (\(command)) since \(formatTimestamp(since))"
    }
}

public final class Lease {
    public let key: CacheKey
    public let slot: Int
    public let mode: ShareMode
    let descriptors: [FileDescriptor]
    let holderPath: String
    var info: HolderInfo

    init(key: CacheKey, slot: Int, mode: ShareMode, descriptors: [FileDescriptor], holderPath: String, info: HolderInfo) {
        self.key = key
        self.slot = slot
        self.mode = mode
        self.descriptors = descriptors
        self.holderPath = holderPath
        self.info = info
    }

    /// Lets the job inherit the lease (see the module doc), or stops it from doing so.
    public func setInheritable(_ inheritable: Bool) throws(Errno) {
        for fd in descriptors { try fd.setInheritable(inheritable) }
    }

    /// Records the job's pid in the holder file, so a holder stays visible if silo dies first.
    public func recordJob(pid: Int32) {
        info.jobPid = pid
        try? LeaseManager.writeHolder(info, to: holderPath)
    }

    /// Drops the locks (for this process; an inheriting job that still runs keeps them).
    public func release() {
        unlink(holderPath)
        for fd in descriptors { fd.close() }
    }
}

public struct LeaseManager {
    public let root: SiloRoot

    /// Private slots tried before giving up: more concurrent jobs than this on one key is a
    /// misconfigured matrix, not a workload, and each slot is a whole cache on disk.
    public static let maxPrivateSlots = 64
    /// How often a bounded wait (`--wait`) polls the lock. Short next to any build, long next to a flock.
    static let pollInterval = 0.05

    public init(root: SiloRoot) { self.root = root }

    func lockPath(_ key: CacheKey, _ slot: Int, _ kind: String) -> String {
        root.lockDirectory(key) + "/\(slot).\(kind)"
    }

    func holdersPath(_ key: CacheKey, _ slot: Int) -> String { lockPath(key, slot, "holders") }

    func openLock(_ key: CacheKey, _ slot: Int, _ kind: String) throws(SiloError) -> FileDescriptor {
        let path = lockPath(key, slot, kind)
        do {
            return try FileDescriptor.open(path, [.readOnly, .create, .noFollow, .closeOnExec], mode: 0o644)
        } catch {
            throw SiloError("cannot open lock \(path): \(error)")
        }
    }

    /// Takes a lease on `key` in `mode`. `wait` bounds the wait for a busy key (nil: wait forever);
    /// `onBusy` is called once, before waiting, with the holders that are in the way.
    /// Recorded leases (RecordedLease) in the way count like holders: the flocks are let go and
    /// taken again after a poll interval until the record is released or expires. `renewing`: a
    /// recorded holder's own record is no obstacle to itself.
    public func acquire(key: CacheKey, mode: ShareMode, wait: Double?, command: String, renewing: HolderID? = nil,
                        onBusy: ([HolderInfo]) -> Void) throws(SiloError) -> Lease {
        let deadline = wait.map { Clock.monotonic() + $0 }
        var reported = false
        var skipSlots = Set<Int>()
        while true {
            let remaining = deadline.map { max(0, $0 - Clock.monotonic()) }
            let lease = try acquireFlocks(key: key, mode: mode, wait: remaining, command: command, skipSlots: skipSlots,
                                          onBusy: reported ? { _ in } : onBusy)
            let blocking = liveRecords(key: key, slot: lease.slot).filter {
                $0.holder != renewing?.rawValue && RecordedLease.conflicts(held: ShareMode(rawValue: $0.mode) ?? .locked, wanted: mode)
            }
            if blocking.isEmpty { return lease }
            lease.release()
            if mode == .private {
                // Another slot may be free of records.
                skipSlots.insert(lease.slot)
                continue
            }
            if !reported { onBusy(blocking.map(\.info)); reported = true }
            if let deadline, Clock.monotonic() >= deadline {
                throw SiloError("key '\(key)' slot \(lease.slot) is busy: held by \(blocking[0].info.summary); gave up after --wait \(formatDuration(wait ?? 0))", exitCode: ExitCode.busy)
            }
            Clock.sleep(seconds: Self.pollInterval * 4)
        }
    }

    func acquireFlocks(key: CacheKey, mode: ShareMode, wait: Double?, command: String, skipSlots: Set<Int>,
                       onBusy: ([HolderInfo]) -> Void) throws(SiloError) -> Lease {
        do {
            try FileSystem.makeDirectories(root.lockDirectory(key), mode: 0o755)
        } catch {
            throw SiloError("cannot create lock directory \(root.lockDirectory(key)): \(error)")
        }
        let deadline = wait.map { Clock.monotonic() + $0 }
        var fds: [FileDescriptor] = []
        var slot = 1
        do throws(SiloError) {
            switch mode {
            case .locked:
                let excl = try openLock(key, 1, "excl")
                fds.append(excl)
                try take(excl, .exclusive, key: key, slot: 1, deadline: deadline, wait: wait, onBusy: onBusy)
            case .shared:
                let priv = try openLock(key, 1, "priv")
                fds.append(priv)
                try take(priv, .shared, key: key, slot: 1, deadline: deadline, wait: wait, onBusy: onBusy)
                try checkSameUID(key: key, slot: 1)
            case .private:
                slot = try takePrivateSlot(key: key, fds: &fds, skip: skipSlots)
            }
            let use = try openLock(key, slot, "use")
            fds.append(use)
            // Only the collector holds `.use` exclusively, and only while it renames a cache away.
            do { try use.lock(.shared) } catch { throw SiloError("cannot lock \(lockPath(key, slot, "use")): \(error)") }
        } catch {
            for fd in fds { fd.close() }
            throw error
        }
        let info = HolderInfo(pid: getpid(), jobPid: nil, uid: geteuid(), mode: mode.rawValue, command: command, since: Clock.now())
        let dir = holdersPath(key, slot)
        try? FileSystem.makeDirectories(dir, mode: 0o755)
        let path = dir + "/\(getpid())"
        try? Self.writeHolder(info, to: path)
        return Lease(key: key, slot: slot, mode: mode, descriptors: fds, holderPath: path, info: info)
    }

    /// Locks `fd`, first without blocking; when busy, reports the holders once and then waits,
    /// forever or until `deadline`.
    func take(_ fd: FileDescriptor, _ kind: FileDescriptor.LockKind, key: CacheKey, slot: Int,
              deadline: Double?, wait: Double?, onBusy: ([HolderInfo]) -> Void) throws(SiloError) {
        do {
            if try fd.tryLock(kind) { return }
            let blockers = holders(key: key, slot: slot).filter { kind == .exclusive ? $0.mode != ShareMode.shared.rawValue : $0.mode == ShareMode.private.rawValue }
            onBusy(blockers)
            guard let deadline, let wait else {
                try fd.lock(kind)
                return
            }
            while Clock.monotonic() < deadline {
                Clock.sleep(seconds: Self.pollInterval)
                if try fd.tryLock(kind) { return }
            }
            let who = blockers.first.map { "held by \($0.summary)" } ?? "held by another job"
            throw SiloError("key '\(key)' slot \(slot) is busy: \(who); gave up after --wait \(formatDuration(wait))", exitCode: ExitCode.busy)
        } catch let e as SiloError {
            throw e
        } catch {
            throw SiloError("cannot lock \(lockPath(key, slot, kind == .exclusive ? "excl" : "priv")): \(error)")
        }
    }

    /// The lowest slot that nobody holds in any mode.
    func takePrivateSlot(key: CacheKey, fds: inout [FileDescriptor], skip: Set<Int> = []) throws(SiloError) -> Int {
        for slot in 1...Self.maxPrivateSlots where !skip.contains(slot) {
            let excl = try openLock(key, slot, "excl")
            let priv: FileDescriptor
            do { priv = try openLock(key, slot, "priv") } catch { excl.close(); throw error }
            let free = ((try? excl.tryLock(.exclusive)) ?? false) && ((try? priv.tryLock(.exclusive)) ?? false)
            if free {
                fds.append(contentsOf: [excl, priv])
                return slot
            }
            excl.close()
            priv.close()
        }
        throw SiloError("key '\(key)' has all \(Self.maxPrivateSlots) private slots in use; wait for a job of this key to end or use --share locked", exitCode: ExitCode.busy)
    }

    /// A shared lease runs beside other holders in one CARGO_HOME; files one uid writes there must
    /// stay writable for the next, so holders of another uid are refused.
    func checkSameUID(key: CacheKey, slot: Int) throws(SiloError) {
        let me = geteuid()
        if let other = holders(key: key, slot: slot).first(where: { $0.uid != me }) {
            throw SiloError("key '\(key)' is held by uid \(other.uid) (\(other.summary)); --share shared runs beside holders of the same uid only (you are uid \(me))")
        }
    }

    /// The live holders of a slot, oldest first. With `prune`, holder files of dead processes are
    /// removed (never during a dry run, which must change nothing).
    public func holders(key: CacheKey, slot: Int, prune: Bool = true) -> [HolderInfo] {
        let dir = holdersPath(key, slot)
        var result: [HolderInfo] = []
        for name in (try? FileSystem.list(dir)) ?? [] {
            let path = dir + "/" + name
            guard let text = try? FileSystem.read(path), let data = text.data(using: .utf8),
                  let info = try? JSONDecoder().decode(HolderInfo.self, from: data) else { continue }
            if info.isAlive { result.append(info) } else if prune { unlink(path) }
        }
        result += liveRecords(key: key, slot: slot).map(\.info)
        return result.sorted { $0.since < $1.since }
    }

    /// Whether anyone holds a slot: tries the collector's exclusive lock on `.use` and lets it go.
    public func isLeased(key: CacheKey, slot: Int) -> Bool {
        if !liveRecords(key: key, slot: slot).isEmpty { return true }
        guard let fd = try? FileDescriptor.open(lockPath(key, slot, "use"), [.readOnly, .noFollow, .closeOnExec]) else { return false }
        defer { fd.close() }
        return !((try? fd.tryLock(.exclusive)) ?? true)
    }

    /// The collector's hold on an idle slot: `.use` taken exclusive without waiting, so no job holds
    /// the slot and none can start in it (a starting job blocks on `.use` until this is closed, then
    /// finds the cache gone and creates a fresh one). Nil when someone holds the slot.
    public func tryCollect(key: CacheKey, slot: Int) throws(SiloError) -> FileDescriptor? {
        do {
            try FileSystem.makeDirectories(root.lockDirectory(key), mode: 0o755)
        } catch {
            throw SiloError("cannot create lock directory \(root.lockDirectory(key)): \(error)")
        }
        let fd = try openLock(key, slot, "use")
        do {
            // Under the hold no record can be written (its writer holds `.use` shared), so an
            // unexpired one seen now stays in the way until the hold is let go.
            if try fd.tryLock(.exclusive) {
                if liveRecords(key: key, slot: slot).isEmpty { return fd }
                fd.close()
                return nil
            }
        } catch {
            fd.close()
            throw SiloError("cannot lock \(lockPath(key, slot, "use")): \(error)")
        }
        fd.close()
        return nil
    }

    /// The collector's hold (tryCollect), waiting up to `wait` seconds for the slot's jobs and
    /// recorded leases to end; `purpose` says in the busy error what waits ("promote", "fix-owner").
    public func holdIdle(key: CacheKey, slot: Int, wait: Double?, purpose: String) throws(SiloError) -> FileDescriptor {
        let deadline = Clock.monotonic() + (wait ?? 0)
        while true {
            if let fd = try tryCollect(key: key, slot: slot) { return fd }
            if Clock.monotonic() >= deadline {
                let who = holders(key: key, slot: slot, prune: false).first.map { " (held by \($0.summary))" } ?? ""
                throw SiloError("cannot \(purpose): key '\(key)' slot \(slot) is in use\(who); retry when its job ends or pass --wait DURATION", exitCode: ExitCode.busy)
            }
            Clock.sleep(seconds: Self.pollInterval)
        }
    }

    static func writeHolder(_ info: HolderInfo, to path: String) throws {
        let data = try JSONEncoder().encode(info)
        try FileSystem.writeAtomically(path, String(decoding: data, as: UTF8.self))
    }
}
