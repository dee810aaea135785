// Path-level calls: stat, statfs, mkdir, readlink, directory listing, access.
#if canImport(Glibc)
import Glibc
#endif
import CSiloShims

public enum FileSystem {
    /// lstat(2) (fstatat with AT_SYMLINK_NOFOLLOW); nil when the path does not exist.
    public static func status(_ path: String) throws(Errno) -> FileStat? {
        do { return try FileDescriptor.cwd.statAt(path) } catch where error.code == ENOENT { return nil }
    }

    /// The magic number statfs(2) reports for the filesystem holding `path`.
    /// statfs magic numbers of filesystems whose files can share extents (reflink): XFS, btrfs.
    public static let reflinkFilesystems: Set<Int> = [0x58465342, 0x9123683E]

    public static func filesystemType(_ path: String) throws(Errno) -> Int {
        var type = 0
        _ = try retryingEINTR("statfs", path: path) { silo_statfs_type(path, &type) }
        return type
    }

    /// Free and total bytes of the filesystem holding `path` (statvfs(2); free = available to non-root).
    public static func space(_ path: String) throws(Errno) -> (available: Int64, total: Int64) {
        var available: Int64 = 0, total: Int64 = 0
        _ = try retryingEINTR("statvfs", path: path) { silo_statvfs_space(path, &available, &total) }
        return (available, total)
    }

    /// Filesystems on which cargo disables its flock-based locks, with their statfs magic numbers
    /// (linux/magic.h). A silo root there would give every job an unlocked cache.
    public static let networkFilesystems: [Int: String] = [
        0x6969: "nfs",
        0xFF534D42: "cifs",
        0xFE534D42: "smb2",
        0x517B: "smb",
    ]

    /// mkdir -p: creates each missing component. Refuses to pass through a symlink below `base`.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(Errno) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, mode) == 0 { continue }
            let e = errno
            if e != EEXIST { throw Errno(e, call: "mkdir", path: current) }
            guard let st = try status(current) else { throw Errno(ENOENT, call: "mkdir", path: current) }
            if !st.isDirectory { throw Errno(ENOTDIR, call: "mkdir", path: current) }
        }
    }

    /// The names in a directory, without "." and "..", never following a symlink at `path` itself.
    public static func list(_ path: String) throws(Errno) -> [String] {
        let fd = try FileDescriptor.open(path, [.readOnly, .directory, .noFollow, .closeOnExec])
        return try list(fd: fd, path: path)
    }

    /// The names in an open directory; consumes (closes) `fd`.
    public static func list(fd: FileDescriptor, path: String) throws(Errno) -> [String] {
        try entries(fd: fd, path: path).map(\.name)
    }

    /// One entry of a directory listing: its name and the d_type readdir(3) gave (DT_UNKNOWN when
    /// the filesystem does not fill it in; then the caller must fstatat).
    public struct Entry: Sendable {
        public let name: String
        public let type: UInt8
        public init(name: String, type: UInt8) {
            self.name = name
            self.type = type
        }
        public var isDirectory: Bool { type == UInt8(DT_DIR) }
        public var typeUnknown: Bool { type == UInt8(DT_UNKNOWN) }
    }

    /// The entries of an open directory (fdopendir(3), readdir(3)); consumes (closes) `fd`.
    public static func entries(fd: FileDescriptor, path: String) throws(Errno) -> [Entry] {
        guard let dir = fdopendir(fd.rawValue) else {
            let e = Errno.current("fdopendir", path: path)
            fd.close()
            throw e
        }
        defer { closedir(dir) }
        var result: [Entry] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw Errno.current("readdir", path: path) }
                return result
            }
            let type = entry.pointee.d_type
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { result.append(Entry(name: name, type: type)) }
        }
    }

    /// realpath(3).
    public static func realPath(_ path: String) throws(Errno) -> String {
        guard let p = realpath(path, nil) else { throw Errno.current("realpath", path: path) }
        defer { free(p) }
        return String(cString: p)
    }

    /// access(2) with X_OK.
    public static func isExecutable(_ path: String) -> Bool { access(path, X_OK) == 0 }

    /// Writes `contents` to `path` atomically: a temporary file in the same directory, fsync, rename(2).
    public static func writeAtomically(_ path: String, _ contents: String, mode: mode_t = 0o644) throws(Errno) {
        let tmp = path + ".tmp.\(getpid())"
        let fd = try FileDescriptor.open(tmp, [.writeOnly, .create, .truncate, .noFollow, .closeOnExec], mode: mode)
        do {
            try fd.writeAll(contents)
            try fd.sync()
            fd.close()
        } catch {
            fd.close()
            unlink(tmp)
            throw error
        }
        if rename(tmp, path) != 0 {
            let e = Errno.current("rename", path: path)
            unlink(tmp)
            throw e
        }
    }

    /// The whole contents of a regular file, or nil when it does not exist. Never follows a symlink.
    public static func read(_ path: String) throws(Errno) -> String? {
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(path, [.readOnly, .noFollow, .closeOnExec]) } catch where error.code == ENOENT { return nil }
        defer { fd.close() }
        return String(decoding: try fd.readAll(), as: UTF8.self)
    }
}

public enum Identity {
    public static var effectiveUID: uid_t { geteuid() }
    public static var effectiveGID: gid_t { getegid() }
    public static var processID: pid_t { getpid() }
    public static var realUID: uid_t { getuid() }
    public static var realGID: gid_t { getgid() }

    /// The primary group of `uid` from the passwd database.
    public static func primaryGroup(of uid: uid_t) -> gid_t? {
        guard let pw = getpwuid(uid) else { return nil }
        return pw.pointee.pw_gid
    }

    /// The uid of user `name` from the passwd database (getpwnam(3)).
    public static func uid(ofUser name: String) -> uid_t? {
        guard let pw = getpwnam(name) else { return nil }
        return pw.pointee.pw_uid
    }

    /// The home directory of the effective user from the passwd database, for when $HOME is unset.
    public static func passwdHome() -> String? {
        guard let pw = getpwuid(geteuid()), let dir = pw.pointee.pw_dir else { return nil }
        return String(cString: dir)
    }

    /// Whether a process is alive: kill(2) with signal 0 finds it (EPERM means it exists under
    /// another uid) and /proc/<pid>/stat does not call it a zombie. A zombie holds no descriptors,
    /// so no locks: an orphan whose new parent has not reaped it yet is already dead for silo.
    public static func processExists(_ pid: pid_t) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let stat = try? FileSystem.read("/proc/\(pid)/stat"),
              let close = stat.lastIndex(of: ")") else { return true }
        // The state is the first field after the command name, which may itself contain ") ".
        let state = stat[stat.index(after: close)...].dropFirst().first
        return state != "Z" && state != "X"
    }
}

public enum Clock {
    /// Wall-clock seconds since the epoch (clock_gettime CLOCK_REALTIME).
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Monotonic seconds, for measuring waits.
    public static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public static func sleep(seconds: Double) {
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
    }
}
