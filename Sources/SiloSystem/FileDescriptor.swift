// A file descriptor type over open(2)/openat(2), flock(2), fstat(2), read/write and close.
#if canImport(Glibc)
import Glibc
#endif
import CSiloShims

/// An open file descriptor. Not closed automatically: the owner calls `close()`, because a lease's
/// descriptor must outlive scopes (it is inherited by the job's processes on purpose).
public struct FileDescriptor: Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// AT_FDCWD: resolve relative paths against the working directory.
    public static let cwd = FileDescriptor(rawValue: AT_FDCWD)

    public struct OpenFlags: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let readOnly = OpenFlags(rawValue: O_RDONLY)
        public static let writeOnly = OpenFlags(rawValue: O_WRONLY)
        public static let readWrite = OpenFlags(rawValue: O_RDWR)
        public static let create = OpenFlags(rawValue: O_CREAT)
        public static let exclusive = OpenFlags(rawValue: O_EXCL)
        public static let truncate = OpenFlags(rawValue: O_TRUNC)
        public static let append = OpenFlags(rawValue: O_APPEND)
        public static let directory = OpenFlags(rawValue: O_DIRECTORY)
        public static let noFollow = OpenFlags(rawValue: O_NOFOLLOW)
        public static let closeOnExec = OpenFlags(rawValue: O_CLOEXEC)
        public static let path = OpenFlags(rawValue: 0o10000000) // O_PATH
    }

    /// openat(2) relative to this directory descriptor (or `.cwd`).
    public func openAt(_ path: String, _ flags: OpenFlags, mode: mode_t = 0o644) throws(Errno) -> FileDescriptor {
        let fd = try retryingEINTR("openat", path: path) { Glibc.openat(rawValue, path, flags.rawValue, mode) }
        return FileDescriptor(rawValue: fd)
    }

    /// open(2) of a path.
    public static func open(_ path: String, _ flags: OpenFlags, mode: mode_t = 0o644) throws(Errno) -> FileDescriptor {
        try FileDescriptor.cwd.openAt(path, flags, mode: mode)
    }

    /// fcntl(2) F_DUPFD_CLOEXEC: a second descriptor for the same open file description.
    public func duplicate() throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try retryingEINTR("fcntl") { Glibc.fcntl(rawValue, F_DUPFD_CLOEXEC, 0) })
    }

    /// close(2). EINTR is not retried: on Linux the descriptor is released even then.
    public func close() {
        _ = Glibc.close(rawValue)
    }

    public enum LockKind: Sendable { case shared, exclusive }

    /// flock(2), blocking. Locks belong to the open file description, so they are shared with
    /// every process that inherits this descriptor and released when the last of them closes it.
    public func lock(_ kind: LockKind) throws(Errno) {
        let op = kind == .shared ? LOCK_SH : LOCK_EX
        _ = try retryingEINTR("flock") { silo_flock(rawValue, op) }
    }

    /// flock(2) with LOCK_NB: true when taken, false when another description holds a conflicting lock.
    public func tryLock(_ kind: LockKind) throws(Errno) -> Bool {
        let op = (kind == .shared ? LOCK_SH : LOCK_EX) | LOCK_NB
        while true {
            if silo_flock(rawValue, op) == 0 { return true }
            let e = errno
            if e == EWOULDBLOCK { return false }
            if e != EINTR { throw Errno(e, call: "flock") }
        }
    }

    /// flock(2) LOCK_UN.
    public func unlock() throws(Errno) {
        _ = try retryingEINTR("flock") { silo_flock(rawValue, LOCK_UN) }
    }

    /// fstat(2), through statx(2) with AT_EMPTY_PATH so that the mount id comes along.
    public func stat() throws(Errno) -> FileStat {
        var st = silo_stat()
        _ = try retryingEINTR("statx") { silo_statx(rawValue, "", 0, &st) }
        return FileStat(st)
    }

    /// fstatat(2) of a name in this directory, through statx(2); never follows a final symlink
    /// unless asked.
    public func statAt(_ name: String, followSymlinks: Bool = false) throws(Errno) -> FileStat {
        var st = silo_stat()
        _ = try retryingEINTR("statx", path: name) { silo_statx(rawValue, name, followSymlinks ? 1 : 0, &st) }
        return FileStat(st)
    }

    /// mkdirat(2). Returns false when the name already exists.
    @discardableResult
    public func makeDirectoryAt(_ name: String, mode: mode_t = 0o755) throws(Errno) -> Bool {
        do {
            _ = try retryingEINTR("mkdirat", path: name) { Glibc.mkdirat(rawValue, name, mode) }
            return true
        } catch where error.code == EEXIST {
            return false
        }
    }

    /// unlinkat(2); `directory` adds AT_REMOVEDIR. unlinkat never follows a symlink: it removes the link.
    public func unlinkAt(_ name: String, directory: Bool = false) throws(Errno) {
        _ = try retryingEINTR("unlinkat", path: name) { Glibc.unlinkat(rawValue, name, directory ? AT_REMOVEDIR : 0) }
    }

    /// renameat(2) from a name in this directory to a name in `to`.
    public func renameAt(_ name: String, to: FileDescriptor, _ newName: String) throws(Errno) {
        _ = try retryingEINTR("renameat", path: name) { Glibc.renameat(rawValue, name, to.rawValue, newName) }
    }

    /// chmod(2) of the inode this descriptor refers to, through /proc/self/fd: works for O_PATH
    /// descriptors too (fchmod does not), and never resolves a name, so it cannot follow a symlink
    /// that someone swapped in.
    public func changeMode(_ mode: mode_t) throws(Errno) {
        // fchmod(2) first: no path to resolve. It refuses O_PATH descriptors (EBADF); those go
        // through /proc.
        if Glibc.fchmod(rawValue, mode) == 0 { return }
        if errno != EBADF && errno != EINTR { throw Errno.current("fchmod") }
        let path = "/proc/self/fd/\(rawValue)"
        _ = try retryingEINTR("chmod", path: path) { Glibc.chmod(path, mode) }
    }

    /// fchownat(2) with AT_SYMLINK_NOFOLLOW: changes a link itself, never what it points at.
    public func changeOwnerAt(_ name: String, uid: uid_t, gid: gid_t) throws(Errno) {
        _ = try retryingEINTR("fchownat", path: name) { Glibc.fchownat(rawValue, name, uid, gid, AT_SYMLINK_NOFOLLOW) }
    }

    /// write(2) until every byte is written.
    public func writeAll(_ bytes: some Collection<UInt8>) throws(Errno) {
        let array = Array(bytes)
        var offset = 0
        while offset < array.count {
            let n = array.withUnsafeBytes { buf in Glibc.write(rawValue, buf.baseAddress! + offset, buf.count - offset) }
            if n == -1 {
                if errno == EINTR { continue }
                throw Errno.current("write")
            }
            offset += n
        }
    }

    public func writeAll(_ string: String) throws(Errno) { try writeAll(Array(string.utf8)) }

    /// read(2) to the end of the file.
    public func readAll() throws(Errno) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = chunk.withUnsafeMutableBytes { buf in Glibc.read(rawValue, buf.baseAddress!, buf.count) }
            if n == -1 {
                if errno == EINTR { continue }
                throw Errno.current("read")
            }
            if n == 0 { return result }
            result.append(contentsOf: chunk[0..<n])
        }
    }

    /// ftruncate(2).
    public func truncate(_ length: Int = 0) throws(Errno) {
        _ = try retryingEINTR("ftruncate") { Glibc.ftruncate(rawValue, off_t(length)) }
    }

    /// fsync(2).
    public func sync() throws(Errno) {
        _ = try retryingEINTR("fsync") { Glibc.fsync(rawValue) }
    }

    /// Clears FD_CLOEXEC so that a spawned child inherits this descriptor (fcntl(2) F_SETFD).
    public func setInheritable(_ inheritable: Bool) throws(Errno) {
        let flags = try retryingEINTR("fcntl") { Glibc.fcntl(rawValue, F_GETFD) }
        let new = inheritable ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC
        _ = try retryingEINTR("fcntl") { Glibc.fcntl(rawValue, F_SETFD, new) }
    }
}

/// The parts of `struct stat` (as statx(2) reports them) silo looks at.
public struct FileStat: Sendable, Equatable {
    public let device: UInt64
    public let inode: UInt64
    public let mode: UInt32
    public let links: UInt64
    public let uid: UInt32
    public let gid: UInt32
    public let size: Int64
    public let blocks: Int64
    public let modified: Int64
    /// The modification time to the nanosecond, as seconds since the epoch.
    public let modifiedTime: Double
    /// The mount this entry is on (statx STATX_MNT_ID); 0 when the kernel does not say. Differs
    /// from the parent's at a mount point, even for a bind mount of the same filesystem.
    public let mountID: UInt64

    init(_ st: silo_stat) {
        device = st.dev
        inode = st.ino
        mode = st.mode
        links = st.nlink
        uid = st.uid
        gid = st.gid
        size = st.size
        blocks = st.blocks
        modified = st.mtime
        modifiedTime = Double(st.mtime) + Double(st.mtime_nsec) / 1e9
        mountID = st.mnt_id
    }

    public var isDirectory: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFDIR) }
    public var isRegular: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFREG) }
    public var isSymlink: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFLNK) }
    public var permissions: UInt32 { mode & 0o7777 }
    /// Bytes the file occupies on disk (st_blocks is in 512-byte units whatever the block size).
    public var allocatedBytes: Int64 { blocks * 512 }

    /// Whether `other` is on another mount than this (directory) entry: a mount point to skip.
    public func isOtherMount(_ other: FileStat) -> Bool {
        other.device != device || (mountID != 0 && other.mountID != 0 && other.mountID != mountID)
    }
}
