// Deleting a tree without ever following a symlink or leaving its filesystem.
//
// The walk holds a directory descriptor for each level and uses only *at() calls relative to it:
// openat(O_NOFOLLOW|O_DIRECTORY) to descend, fstatat(AT_SYMLINK_NOFOLLOW) to look, unlinkat to
// delete. A symlink is removed as a link; its target is never touched. A directory on another
// device (a bind mount inside a cache) is left alone and reported.

import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

public struct RemovalReport: Sendable {
    public var files = 0
    public var directories = 0
    public var bytes: Int64 = 0
    public var skippedMounts: [String] = []
}

public enum Remover {
    /// Renames `path` into the root's trash (same filesystem, so atomic), then deletes it there.
    public static func moveToTrash(_ path: String, root: SiloRoot, label: String) throws {
        try FileSystem.makeDirectories(root.trashPath)
        let dest = root.trashPath + "/\(label).\(Int(Clock.now())).\(getpid())"
        if rename(path, dest) != 0 { throw Errno.current("rename", path: path) }
        _ = try removeTree(dest)
    }

    /// Removes `path` and everything below it that is on the same filesystem.
    @discardableResult
    public static func removeTree(_ path: String) throws -> RemovalReport {
        var report = RemovalReport()
        let (parentPath, name) = split(path)
        let parent = try FileDescriptor.open(parentPath, [.readOnly, .directory, .closeOnExec])
        defer { parent.close() }
        let st = try parent.statAt(name)
        if !st.isDirectory {
            try parent.unlinkAt(name)
            report.files += 1
            report.bytes += st.allocatedBytes
            return report
        }
        try removeDirectory(parent: parent, name: name, path: path, device: st.device, report: &report)
        return report
    }

    static func removeDirectory(parent: FileDescriptor, name: String, path: String, device: UInt64, report: inout RemovalReport) throws {
        let dir = try parent.openAt(name, [.readOnly, .directory, .noFollow, .closeOnExec])
        let names: [String]
        do {
            let listing = try dir.openAt(".", [.readOnly, .directory, .closeOnExec])
            names = try FileSystem.list(fd: listing, path: path)
        } catch {
            dir.close()
            throw error
        }
        defer { dir.close() }
        for entry in names {
            let st = try dir.statAt(entry)
            if st.isDirectory {
                if st.device != device {
                    report.skippedMounts.append(path + "/" + entry)
                    continue
                }
                try removeDirectory(parent: dir, name: entry, path: path + "/" + entry, device: device, report: &report)
            } else {
                try dir.unlinkAt(entry)
                report.files += 1
                report.bytes += st.allocatedBytes
            }
        }
        if report.skippedMounts.contains(where: { $0.hasPrefix(path + "/") }) { return }
        try parent.unlinkAt(name, directory: true)
        report.directories += 1
    }

    static func split(_ path: String) -> (String, String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let parent = String(path[..<slash])
        return (parent.isEmpty ? "/" : parent, String(path[path.index(after: slash)...]))
    }
}
