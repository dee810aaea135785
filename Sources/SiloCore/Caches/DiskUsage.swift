// Measuring a tree the way `du -s` does: allocated blocks, each inode once, never following a
// symlink, never crossing into another filesystem.

import SiloSystem

public struct DiskUsage: Sendable, Equatable {
    /// Allocated bytes, each inode counted once (hard links inside the tree are not double-counted).
    public var bytes: Int64 = 0
    /// Sum of file sizes as `ls -l` shows them.
    public var apparentBytes: Int64 = 0
    public var files = 0
    public var directories = 0

    /// Measures `path`; a missing path measures zero.
    public static func measure(_ path: String) throws -> DiskUsage {
        var usage = DiskUsage()
        guard let st = try FileSystem.status(path) else { return usage }
        var seen = Set<UInt64>()
        usage.add(st, seen: &seen)
        if st.isDirectory {
            let fd = try FileDescriptor.open(path, [.readOnly, .directory, .noFollow, .closeOnExec])
            defer { fd.close() }
            try walk(fd, path: path, device: st.device, usage: &usage, seen: &seen)
        }
        return usage
    }

    mutating func add(_ st: FileStat, seen: inout Set<UInt64>) {
        if st.isDirectory { directories += 1 } else { files += 1 }
        apparentBytes += st.size
        if st.links > 1 && !st.isDirectory {
            guard seen.insert(st.inode).inserted else { return }
        }
        bytes += st.allocatedBytes
    }

    static func walk(_ dir: FileDescriptor, path: String, device: UInt64, usage: inout DiskUsage, seen: inout Set<UInt64>) throws {
        let listing = try dir.openAt(".", [.readOnly, .directory, .closeOnExec])
        for name in try FileSystem.list(fd: listing, path: path) {
            guard let st = try? dir.statAt(name) else { continue } // deleted meanwhile
            if st.isDirectory && st.device != device { continue }
            usage.add(st, seen: &seen)
            if st.isDirectory {
                guard let child = try? dir.openAt(name, [.readOnly, .directory, .noFollow, .closeOnExec]) else { continue }
                defer { child.close() }
                try walk(child, path: path + "/" + name, device: device, usage: &usage, seen: &seen)
            }
        }
    }
}
