// Shared pieces of the integration tests: the real silo binary, temporary directories, a real
// fixture registry served over HTTP on 127.0.0.1, and a copy of the example workspace.

import Foundation
import Testing
import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

enum Repo {
    /// The repository's root, from this file's path (Tests/SiloTests/Support.swift).
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The silo executable SwiftPM built beside the test bundle.
    static let silo: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // The bundle runs as .build/<triple>/debug/siloPackageTests.xctest.
        if dir.lastPathComponent.hasSuffix(".xctest") { dir.deleteLastPathComponent() }
        return dir.appendingPathComponent("silo").path
    }()

    static let fixtureTool = root + "/fixtures/registry/silo-fixture-registry"
    static let workspace = root + "/examples/workspace"
}

/// A directory under /tmp, removed when the test is done with it.
final class TempDir {
    let path: String

    init(_ label: String = "silo-test") {
        var template = Array("/tmp/\(label).XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

struct RunResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// The environment every child gets: this process's, without anything that would point cargo or
/// silo somewhere else than the test says.
func baseEnvironment() -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    for k in ["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR", "SILO_ROOT", "SILO_KEY"] { env[k] = nil }
    for k in env.keys where k.hasPrefix("GITHUB_") { env[k] = nil }
    return env
}

/// Runs a program to completion; output is collected through files so a chatty child never blocks.
@discardableResult
func run(_ executable: String, _ arguments: [String], environment: [String: String] = baseEnvironment(), cwd: String? = nil) throws -> RunResult {
    let p = start(executable, arguments, environment: environment, cwd: cwd)
    try p.run()
    return p.wait()
}

/// A child process started with posix_spawn and reaped with waitpid, not Foundation's Process: that
/// one passes the child a socket without close-on-exec and watches it to learn of the child's exit,
/// so a child that leaves an orphan holding the socket (what a SIGKILLed silo does) never "exits";
/// it also starts children with most signals blocked.
final class Running {
    let executable: String
    let arguments: [String]
    let environment: [String: String]
    let cwd: String?
    let out: TempDir = TempDir("silo-out")
    private(set) var pid: pid_t = 0
    private var status: TerminationStatus?

    init(executable: String, arguments: [String], environment: [String: String], cwd: String?) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.cwd = cwd
    }

    var stdoutPath: String { out.file("stdout") }
    var stderrPath: String { out.file("stderr") }
    var processIdentifier: pid_t { pid }

    func run() throws {
        pid = try Spawn.start(executable: executable, arguments: [executable] + arguments,
                              environment: environment.map { "\($0.key)=\($0.value)" }, newProcessGroup: false,
                              redirect: [0: "/dev/null", 1: stdoutPath, 2: stderrPath], workingDirectory: cwd)
    }

    var isRunning: Bool {
        if status != nil { return false }
        status = try? Spawn.poll(pid)
        return status == nil
    }

    func result() -> RunResult {
        RunResult(status: status?.shellCode ?? -1,
                  stdout: (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "",
                  stderr: (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "")
    }

    func wait() -> RunResult {
        if status == nil { status = try? Spawn.wait(pid) }
        return result()
    }

    func terminate() { kill(pid, SIGTERM) }
}

/// Prepares (does not start) a process with stdout and stderr going to files.
func start(_ executable: String, _ arguments: [String], environment: [String: String] = baseEnvironment(), cwd: String? = nil) -> Running {
    Running(executable: executable, arguments: arguments, environment: environment, cwd: cwd)
}

/// Runs silo with a root, returning its status and output.
@discardableResult
func silo(_ arguments: [String], root: String, environment: [String: String] = baseEnvironment(), cwd: String? = nil) throws -> RunResult {
    try run(Repo.silo, ["--root", root] + arguments, environment: environment, cwd: cwd)
}

/// A TCP port that was free a moment ago, from the kernel (bind to port 0).
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// A real sparse registry built from Debian's crate sources and served by python's http.server on
/// 127.0.0.1. The port is fixed for the registry's life, so cargo's registry dir name is stable.
final class FixtureRegistry {
    let dir = TempDir("silo-registry")
    let port: Int
    var server: Running?

    var logPath: String { dir.file("server.log") }
    var configPath: String { dir.file("cargo-config.toml") }

    init() throws {
        port = freePort()
        let built = try run(Repo.fixtureTool, ["build", "--out", dir.file("registry"), "--port", String(port)])
        guard built.status == 0 else { throw TestFailure("fixture registry build failed: \(built.stderr)") }
        let config = try run(Repo.fixtureTool, ["cargo-config", "--port", String(port)])
        guard config.status == 0 else { throw TestFailure("cargo-config failed: \(config.stderr)") }
        try config.stdout.write(toFile: configPath, atomically: true, encoding: .utf8)
        try start()
    }

    deinit { stop() }

    func start() throws {
        let s = SiloTests.start(Repo.fixtureTool, ["serve", "--dir", dir.file("registry"), "--port", String(port), "--log", logPath])
        try s.run()
        server = s
        for _ in 0..<200 {
            if let out = try? String(contentsOfFile: s.stdoutPath, encoding: .utf8), out.contains("serving") { return }
            if !s.isRunning { throw TestFailure("fixture server exited: \(s.result().stderr)") }
            usleep(50_000)
        }
        throw TestFailure("fixture server did not start on port \(port)")
    }

    func stop() {
        guard let s = server else { return }
        s.terminate()
        _ = s.wait()
        server = nil
    }

    /// The request lines the server has logged so far (`/path status`).
    func requests() -> [String] {
        ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }
}

/// A private copy of the example workspace (cargo writes Cargo.lock and maybe target/ into it).
func copyWorkspace(into parent: TempDir, named name: String = "workspace") throws -> String {
    let dest = parent.file(name)
    let r = try run("/bin/cp", ["-r", Repo.workspace, dest])
    guard r.status == 0 else { throw TestFailure("cp failed: \(r.stderr)") }
    for stale in ["Cargo.lock", "target"] { try? FileManager.default.removeItem(atPath: dest + "/" + stale) }
    return dest
}

/// Runs a shell script, throwing with its stderr when it fails.
func sh(_ script: String) throws {
    let r = try run("/bin/sh", ["-c", script])
    guard r.status == 0 else { throw TestFailure("\(script): \(r.stderr)") }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Every regular file under `path` as (device, inode), for "no two caches share a file" checks.
func inodes(under path: String) -> Set<String> {
    var result = Set<String>()
    guard let e = FileManager.default.enumerator(atPath: path) else { return result }
    while let rel = e.nextObject() as? String {
        var st = stat()
        if lstat(path + "/" + rel, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG {
            result.insert("\(st.st_dev):\(st.st_ino)")
        }
    }
    return result
}

let runningAsRoot = geteuid() == 0

/// Names, types, modes, sizes, link targets and contents of every entry under `path`, as one text:
/// equal digests mean nothing under `path` changed (times aside).
func treeDigest(_ path: String) throws -> String {
    let script = """
    cd "$1" && find . -printf '%p %y %m %s %U:%G %l\\n' | LC_ALL=C sort && \
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
    """
    let r = try run("/bin/sh", ["-c", script, "sh", path])
    guard r.status == 0 else { throw TestFailure("digest of \(path) failed: \(r.stderr)") }
    return r.stdout
}

/// Runs silo as another uid (setpriv from util-linux), with a HOME of its own.
func siloAs(uid: Int, _ arguments: [String], root: String) throws -> RunResult {
    var env = baseEnvironment()
    env["HOME"] = "/tmp"
    return try run("/usr/bin/setpriv", ["--reuid", String(uid), "--regid", String(uid), "--clear-groups", Repo.silo, "--root", root] + arguments, environment: env)
}

/// Parses silo's JSON output into a dictionary.
func jsonObject(_ text: String) throws -> [String: Any] {
    guard let o = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { throw TestFailure("not a JSON object: \(text)") }
    return o
}

/// A deterministic pseudo-random sequence (SplitMix64), so a failing trial can be replayed from its seed.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}

/// A loop-mounted filesystem of its own (root only): an XFS made with reflink=1 for the reflink
/// path, or a small ext4 to run out of space on. Unmounted (lazily, in case a test left a process
/// in it) when released.
final class LoopMount {
    let dir = TempDir("silo-loop")
    let mountPoint: String

    init(_ type: String, megabytes: Int) throws {
        mountPoint = dir.file("mnt")
        let mkfs = type == "xfs" ? "mkfs.xfs -q -m reflink=1" : "mkfs.ext4 -q -F"
        try sh("truncate -s \(megabytes)M \(dir.file("image")) && \(mkfs) \(dir.file("image")) && mkdir \(mountPoint) && mount -o loop \(dir.file("image")) \(mountPoint) && chmod 755 \(mountPoint)")
    }

    deinit { _ = try? run("/bin/umount", ["-l", mountPoint]) }

    static var xfsAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/sbin/mkfs.xfs") || FileManager.default.isExecutableFile(atPath: "/sbin/mkfs.xfs") }
}

/// The Rust toolchain's sysroot (under /root on this machine: out of reach of other uids).
let rustSysroot: String = {
    (try? run("/bin/sh", ["-c", "rustc --print sysroot"]))?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
}()

/// Runs silo (as root) the way a container host would: in a private mount namespace where the
/// toolchain is bind-mounted at a path every uid can reach, with PATH pointing there, so that a
/// job started with `--user` finds cargo. `scratch` holds the mount point.
func siloWithToolchain(_ arguments: [String], root: String, cwd: String, scratch: TempDir, environment: [String: String] = baseEnvironment()) throws -> RunResult {
    let mountPoint = scratch.file("toolchain")
    try? FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
    var env = environment
    env["PATH"] = mountPoint + "/bin:/usr/bin:/bin"
    env["HOME"] = "/tmp"
    let script = "mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\""
    return try run("/usr/bin/unshare", ["--mount", "/bin/sh", "-c", script, "sh", rustSysroot, mountPoint, Repo.silo, "--root", root] + arguments,
                   environment: env, cwd: cwd)
}
