// The root's trash: tombstone before delete.
//
// A cache (or a target dir, or a crate's sources) chosen for deletion is first renamed into
// <root>/trash/ -- the same filesystem, so the rename is atomic -- and only then are its files
// removed. Whoever looks at the cache's path sees either the whole cache or nothing, never a
// half-deleted one; a deletion that is killed midway leaves a half-deleted entry *in the trash*,
// where nobody uses it and where the next reap finishes it.
//
// Entry names: <label>.<unix-nanoseconds>.<pid>, unique without any coordination.

import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

public struct Trash: Sendable {
    public let root: SiloRoot
    public init(root: SiloRoot) { self.root = root }

    /// Renames `path` into the trash; returns the trash entry's name.
    public func tombstone(_ path: String, label: String) throws(Errno) -> String {
        try FileSystem.makeDirectories(root.trashPath)
        let name = "\(label).\(Int64(Clock.now() * 1e9)).\(getpid())"
        let dest = root.trashPath + "/" + name
        if rename(path, dest) != 0 { throw Errno.current("rename", path: path) }
        return name
    }

    /// The entries waiting to be deleted.
    public func entries() -> [String] {
        ((try? FileSystem.list(root.trashPath)) ?? []).sorted()
    }

    /// Deletes one entry. Whatever could not go (a mount point, a file silo may not delete) stays
    /// in the trash and is in the report.
    public func purge(_ name: String) throws(Errno) -> WalkReport {
        try TreeWalk.remove(root.trashPath + "/" + name)
    }

    /// Renames `path` into the trash and deletes it there.
    @discardableResult
    public func delete(_ path: String, label: String) throws(Errno) -> WalkReport {
        try purge(try tombstone(path, label: label))
    }
}
