// Making a file's bytes appear at a second name: linkat(2), ioctl(FICLONE), copy_file_range(2),
// and reading where a file's bytes are (ioctl(FS_IOC_FIEMAP)). Symlinks: readlinkat/symlinkat.
#if canImport(Glibc)
import Glibc
#endif
import CSiloShims

extension FileDescriptor {
    /// linkat(2) without AT_SYMLINK_FOLLOW: a new name `newName` in directory `to` for this
    /// directory's entry `name` (a symlink gets a second link, never its target).
    public func linkAt(_ name: String, to: FileDescriptor, _ newName: String) throws(Errno) {
        _ = try retryingEINTR("linkat", path: name) { Glibc.linkat(rawValue, name, to.rawValue, newName, 0) }
    }

    /// symlinkat(2): `name` in this directory, pointing at `target` (which is not looked at).
    public func symlinkAt(_ name: String, target: String) throws(Errno) {
        _ = try retryingEINTR("symlinkat", path: name) { Glibc.symlinkat(target, rawValue, name) }
    }

    /// readlinkat(2) of `name` in this directory.
    public func readLinkAt(_ name: String) throws(Errno) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = try retryingEINTR("readlinkat", path: name) { Glibc.readlinkat(rawValue, name, &buffer, buffer.count - 1) }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// ioctl(FICLONE): this (empty, writable) file shares every extent of `source`; nothing is
    /// copied. Throws EOPNOTSUPP/EXDEV/EINVAL where the filesystem has no reflink.
    public func cloneContents(from source: FileDescriptor) throws(Errno) {
        _ = try retryingEINTR("ioctl(FICLONE)") { silo_ficlone(rawValue, source.rawValue) }
    }

    /// Copies all of `source` (from its current offset) into this file: copy_file_range(2) in the
    /// kernel, read/write where the kernel or filesystem refuses it.
    public func copyContents(from source: FileDescriptor) throws(Errno) {
        var useKernel = true
        var chunk = [UInt8]()
        while true {
            if useKernel {
                let n = silo_copy_file_range(source.rawValue, rawValue, 1 << 30)
                if n > 0 { continue }
                if n == 0 { return }
                let e = errno
                if e == EINTR { continue }
                if e == EXDEV || e == EINVAL || e == ENOSYS || e == EOPNOTSUPP { useKernel = false; continue }
                throw Errno(e, call: "copy_file_range")
            }
            if chunk.isEmpty { chunk = [UInt8](repeating: 0, count: 1 << 17) }
            let n = chunk.withUnsafeMutableBytes { Glibc.read(source.rawValue, $0.baseAddress!, $0.count) }
            if n == 0 { return }
            if n < 0 {
                if errno == EINTR { continue }
                throw Errno.current("read")
            }
            try writeAll(chunk[0..<n])
        }
    }

    /// fchown(2) of the open file (never a name, so never a symlink's target).
    public func changeOwner(uid: uid_t, gid: gid_t) throws(Errno) {
        _ = try retryingEINTR("fchown") { Glibc.fchown(rawValue, uid, gid) }
    }

    /// One extent of this file's bytes on disk.
    public struct Extent: Sendable, Equatable {
        public let physical: UInt64
        public let length: UInt64
        /// FIEMAP_EXTENT_SHARED: another file (a reflink) uses the same blocks.
        public let shared: Bool
    }

    /// ioctl(FS_IOC_FIEMAP): where this file's bytes are on disk, extent by extent.
    public func extents() throws(Errno) -> [Extent] {
        var result: [Extent] = []
        var buffer = [silo_extent](repeating: silo_extent(), count: 64)
        var start: UInt64 = 0
        while true {
            var count: Int32 = 0, last: Int32 = 0
            _ = try retryingEINTR("ioctl(FS_IOC_FIEMAP)") { silo_fiemap(rawValue, start, &buffer, 64, &count, &last) }
            if count == 0 { return result }
            for e in buffer[0..<Int(count)] {
                result.append(Extent(physical: e.physical, length: e.length, shared: e.shared != 0))
            }
            let end = buffer[Int(count) - 1]
            if last != 0 { return result }
            start = end.logical + end.length
        }
    }
}

extension FileDescriptor {
    /// futimens(2): access and modification time of the open file set to `seconds`, as `cp -a` keeps them.
    public func setModifiedTime(_ seconds: Double) throws(Errno) {
        let whole = seconds.rounded(.down)
        let t = timespec(tv_sec: Int(whole), tv_nsec: Int((seconds - whole) * 1e9))
        var times = [t, t]
        _ = try retryingEINTR("futimens") { Glibc.futimens(rawValue, &times) }
    }
}
