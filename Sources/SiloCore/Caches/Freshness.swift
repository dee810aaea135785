// Keeping a cache's recency visible to mtime-based deleters.
//
// Cargo extracts every source file with its archive's mtime (2006-07-24), so to a TTL sweep
// (`find registry/src -mtime +1 -delete`, the reaper of many fleets) every extracted file looks
// years old the moment it exists, and the sweep deletes the sources of a crate while its .cargo-ok
// stays: the marker-present-files-missing failure. Cargo itself never looks at those mtimes (it
// skips mtime checks under CARGO_HOME/registry), so silo sets them to the time of use before a job
// runs: a sweep then sees what it was meant to see, files unused for longer than its TTL.
//
// Cost: one walk of registry/src and git/checkouts, statx per file and utimensat for each file
// older than `stale`; done at most once per `interval` per cache (a stamp file in the slot), so the
// first job of the day pays it and the rest do not.

import SiloSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum Freshness {
    /// Files older than this get the time of use. Under any sensible TTL, over any build's length.
    public static let stale = 12 * 3600.0
    /// How often a cache is walked for it. Half of `stale`, so no file in use gets older than it.
    public static let interval = 6 * 3600.0
    static let stamp = ".silo-freshened"

    /// Sets to `now` the mtime of every source file of the cache older than `stale`, unless the
    /// cache was freshened less than `interval` ago. Returns the files changed (nil: skipped).
    @discardableResult
    public static func freshen(slotDirectory: String, home: String, now: Double = Clock.now()) -> Int? {
        let stampPath = slotDirectory + "/" + stamp
        if let st = try? FileSystem.status(stampPath), now - st.modifiedTime < interval { return nil }
        var changed = 0
        for top in [home + "/registry/src", home + "/git/checkouts"] {
            guard let fd = try? FileDescriptor.open(top, [.readOnly, .directory, .noFollow, .closeOnExec]) else { continue }
            changed += walk(fd, now: now)
        }
        try? FileSystem.writeAtomically(stampPath, String(format: "%.0f\n", now))
        return changed
    }

    /// Depth-first over one directory (closed here), never following a symlink or leaving the mount.
    static func walk(_ dir: FileDescriptor, now: Double) -> Int {
        defer { dir.close() }
        guard let top = try? dir.stat(), let entries = try? FileSystem.entries(fd: try dir.duplicate(), path: "") else { return 0 }
        var changed = 0
        let ts = timespec(tv_sec: Int(now), tv_nsec: 0)
        for e in entries {
            guard let st = try? dir.statAt(e.name), !top.isOtherMount(st) else { continue }
            if st.isDirectory {
                if let sub = try? dir.openAt(e.name, [.readOnly, .directory, .noFollow, .closeOnExec]) { changed += walk(sub, now: now) }
            } else if st.isRegular && now - st.modifiedTime > stale {
                var times = [ts, ts]
                if utimensat(dir.rawValue, e.name, &times, AT_SYMLINK_NOFOLLOW) == 0 { changed += 1 }
            }
        }
        return changed
    }
}
