// posix_spawn(2) and waitpid(2): starting the job in its own process group and reaping it.
#if canImport(Glibc)
import Glibc
#endif
import CSiloShims

public enum TerminationStatus: Equatable, Sendable {
    case exited(Int32)
    case signaled(Int32)

    /// The shell convention: the exit code, or 128+N for death by signal N.
    public var shellCode: Int32 {
        switch self {
        case .exited(let c): return c
        case .signaled(let s): return 128 + s
        }
    }
}

public enum Spawn {
    /// Starts `executable` with `arguments` (argv[0] included) and `environment`, as the leader of a
    /// new process group, with default dispositions and an empty signal mask. Descriptors without
    /// FD_CLOEXEC are inherited: that is how a lease's lock travels with the job.
    /// `redirect` opens files onto descriptors 0, 1 and 2 in the child (posix_spawn_file_actions_addopen);
    /// `workingDirectory` changes the child's directory (posix_spawn_file_actions_addchdir_np).
    public static func start(executable: String, arguments: [String], environment: [String], newProcessGroup: Bool = true,
                             redirect: [Int32: String] = [:], workingDirectory: String? = nil) throws(Errno) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (fd, path) in redirect.sorted(by: { $0.key < $1.key }) {
            let flags = fd == 0 ? O_RDONLY : (O_WRONLY | O_CREAT | O_APPEND)
            posix_spawn_file_actions_addopen(&actions, fd, path, flags, 0o644)
        }
        if let workingDirectory { silo_spawn_addchdir(&actions, workingDirectory) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attr, 0)
        }
        posix_spawnattr_setflags(&attr, Int16(flags))
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        // Reset what silo or the Swift runtime may have changed (SIGPIPE is ignored by some runtimes).
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)

        var pid: pid_t = 0
        let rc = withCStrings(arguments) { argv in
            withCStrings(environment) { envp in
                posix_spawn(&pid, executable, &actions, &attr, argv, envp)
            }
        }
        if rc != 0 { throw Errno(rc, call: "posix_spawn", path: executable) }
        return pid
    }

    /// Starts `executable` as `uid`:`gid` (no supplementary groups) as the leader of a new process
    /// group, like `start`; needs root. posix_spawn cannot change credentials, so this is fork and
    /// execve in C (silo_spawn_as); an exec failure in the child is thrown here with its errno.
    public static func start(executable: String, arguments: [String], environment: [String], uid: uid_t, gid: gid_t) throws(Errno) -> pid_t {
        var childErrno: Int32 = 0
        let pid = withCStrings(arguments) { argv in
            withCStrings(environment) { envp in
                silo_spawn_as(executable, argv, envp, uid, gid, &childErrno)
            }
        }
        if pid < 0 { throw Errno(childErrno, call: "fork", path: executable) }
        if childErrno != 0 {
            _ = try? wait(pid)
            throw Errno(childErrno, call: "execve", path: executable)
        }
        return pid
    }

    /// waitpid(2) until the child ends, retrying EINTR (a forwarded signal interrupts the wait).
    public static func wait(_ pid: pid_t) throws(Errno) -> TerminationStatus {
        var status: Int32 = 0
        _ = try retryingEINTR("waitpid") { waitpid(pid, &status, 0) }
        // The W* macros are not imported into Swift; these are their glibc definitions.
        let signal = status & 0x7f
        if signal == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(signal)
    }

    /// waitpid(2) with WNOHANG: nil while the child runs.
    public static func poll(_ pid: pid_t) throws(Errno) -> TerminationStatus? {
        var status: Int32 = 0
        let r = try retryingEINTR("waitpid") { waitpid(pid, &status, WNOHANG) }
        if r == 0 { return nil }
        let signal = status & 0x7f
        if signal == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(signal)
    }

    /// Forwards SIGINT, SIGTERM and SIGHUP received by silo to the process group `pgid`.
    public static func installSignalForwarding() { silo_install_forwarding_handlers() }
    public static func forwardSignals(to pgid: pid_t) { silo_forward_signals_to(pgid) }
}

/// Runs `body` with a NULL-terminated array of C strings.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for p in pointers { free(p) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
