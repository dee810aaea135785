// `silo doctor`: the known traps of a runner host, checked and explained. What the host is like is
// gathered once (HostFacts, the mechanism: statfs, access, a reflink probe, `cargo --version`,
// /proc); what is wrong with it is a pure function of those facts (Doctor.findings), so every
// finding is tested from facts without needing a host that has the trap.

import SiloSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What `silo doctor` looked at.
public struct HostFacts: Sendable {
    public var root: String
    /// statfs f_type of the root (or of its nearest existing parent).
    public var filesystemType: Int
    /// The runner uid the checks are for, and whether it can create and write in the root.
    public var runnerUID: UInt32
    public var runnerCanWrite: Bool
    /// nil when it could not be probed (the root does not exist yet, or silo may not write there).
    public var reflink: Bool?
    /// `cargo --version` on PATH, nil when there is none.
    public var cargoVersion: String?
    /// CARGO_HOME of each GitHub runner process found, by pid.
    public var runnerCargoHomes: [Int32: String]
    /// A docker CLI on PATH or a docker socket.
    public var docker: Bool

    public init(root: String, filesystemType: Int, runnerUID: UInt32, runnerCanWrite: Bool, reflink: Bool?, cargoVersion: String?,
                runnerCargoHomes: [Int32: String], docker: Bool) {
        self.root = root
        self.filesystemType = filesystemType
        self.runnerUID = runnerUID
        self.runnerCanWrite = runnerCanWrite
        self.reflink = reflink
        self.cargoVersion = cargoVersion
        self.runnerCargoHomes = runnerCargoHomes
        self.docker = docker
    }
}

public struct Finding: Sendable, Encodable, Equatable {
    /// Stable names (the JSON contract): network-filesystem, overlay-filesystem, root-not-writable,
    /// no-reflink, old-cargo, no-cargo, shared-cargo-home, docker.
    public var check: String
    public var problem: String
    public var fix: String
}

public enum Doctor {
    static let overlayfs = 0x794c7630
    static let tmpfs = 0x01021994
    /// Cargo takes its package-cache lock for a whole build only since 1.74; before, a build holds
    /// no lock while it reads the registry, so a concurrent gc or fetch can change it under the build.
    static let lockingCargo = (1, 74)

    /// Everything wrong with the host, in the order a person should fix it.
    public static func findings(_ f: HostFacts) -> [Finding] {
        var out: [Finding] = []
        if let name = FileSystem.networkFilesystems[f.filesystemType] {
            out.append(Finding(check: "network-filesystem", problem: "root \(f.root) is on \(name): cargo turns its file locks off there and silo's leases need flock",
                               fix: "put the root on local disk: silo --root /var/lib/silo (or SILO_ROOT) on a local ext4 or XFS"))
        } else if f.filesystemType == overlayfs || f.filesystemType == tmpfs {
            let name = f.filesystemType == overlayfs ? "overlayfs (a container's writable layer)" : "tmpfs (memory, gone at reboot)"
            out.append(Finding(check: "overlay-filesystem", problem: "root \(f.root) is on \(name), not on the host's local disk",
                               fix: "put the root on a local disk of the host: silo --root /var/lib/silo"))
        }
        if !f.runnerCanWrite {
            out.append(Finding(check: "root-not-writable", problem: "uid \(f.runnerUID) cannot create or write \(f.root): its jobs cannot make caches there",
                               fix: "sudo install -d -o \(f.runnerUID) -m 0755 \(f.root)   # or chown -R \(f.runnerUID) \(f.root)"))
        }
        if f.reflink == false {
            out.append(Finding(check: "no-reflink", problem: "the root's filesystem cannot reflink: seeding from a base falls back to hard links (jobs as a runner uid) or full copies (jobs as root)",
                               fix: "for sharing that is safe for root jobs too, put the root on XFS made with reflink=1: mkfs.xfs -m reflink=1 DEVICE"))
        }
        if let v = f.cargoVersion {
            if let (major, minor) = parseCargoVersion(v), (major, minor) < lockingCargo {
                out.append(Finding(check: "old-cargo", problem: "\(v) is older than 1.\(lockingCargo.1): a build holds no lock on the package cache, so a concurrent fetch or gc can change it under the build",
                                   fix: "rustup update stable (cargo >= 1.\(lockingCargo.1))"))
            }
        } else {
            out.append(Finding(check: "no-cargo", problem: "no cargo on PATH", fix: "install a toolchain (rustup), or ignore this on a host that builds only in containers"))
        }
        var byHome: [String: [Int32]] = [:]
        for (pid, home) in f.runnerCargoHomes { byHome[home, default: []].append(pid) }
        for (home, pids) in byHome.sorted(by: { $0.key < $1.key }) where pids.count > 1 {
            out.append(Finding(check: "shared-cargo-home", problem: "\(pids.count) runner services (pids \(pids.sorted().map(String.init).joined(separator: ", "))) share CARGO_HOME \(home): their jobs race in one registry",
                               fix: "run jobs through silo (silo exec, or the runner hooks: silo hook job-started) so each gets its own CARGO_HOME"))
        }
        if f.docker {
            out.append(Finding(check: "docker", problem: "docker is here: a bind mount whose source is missing is created by docker as root, and root containers leave root's files in caches",
                               fix: "start containers with docker run $(silo mount --key K) ..., which makes the sources first and passes --user"))
        }
        return out
    }

    /// (major, minor) of "cargo 1.95.0 (f2d3ce0bd 2025-12-12)".
    static func parseCargoVersion(_ text: String) -> (Int, Int)? {
        guard let m = firstMatch(#"cargo (\d+)\.(\d+)"#, text), let major = Int(m.1[1]), let minor = Int(m.1[2]) else { return nil }
        return (major, minor)
    }

    // MARK: gathering

    /// Looks at the host.
    public static func gather(root: SiloRoot, runnerUID: UInt32, environment: [String: String]) -> HostFacts {
        var existing = root.path
        while (try? FileSystem.status(existing)) == nil, existing != "/" { existing = (existing as NSString).deletingLastPathComponent }
        let type = (try? FileSystem.filesystemType(existing)) ?? 0
        let st = try? FileSystem.status(existing)
        let canWrite = st.map { may(uid: runnerUID, $0, write: true) } ?? false
        let reflink: Bool? = (try? FileSystem.status(root.path)) != nil && access(root.path, W_OK) == 0 ? TreeClone.reflinkSupported(in: root.path) : nil
        let path = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        let cargo = which("cargo", path: path).flatMap { exe -> String? in
            let out = TempOutput()
            guard let pid = try? Spawn.start(executable: exe, arguments: ["cargo", "--version"], environment: environment.map { "\($0.key)=\($0.value)" },
                                             newProcessGroup: false, redirect: [0: "/dev/null", 1: out.path, 2: "/dev/null"]),
                  let status = try? Spawn.wait(pid), status == .exited(0) else { return nil }
            return out.read().trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let docker = which("docker", path: path) != nil || (try? FileSystem.status("/var/run/docker.sock")) != nil
        return HostFacts(root: root.path, filesystemType: type, runnerUID: runnerUID, runnerCanWrite: canWrite, reflink: reflink,
                         cargoVersion: cargo, runnerCargoHomes: runnerCargoHomes(), docker: docker)
    }

    /// Permission bits as the kernel would apply them to `uid` (its primary group only).
    static func may(uid: UInt32, _ st: FileStat, write: Bool) -> Bool {
        if uid == 0 { return true }
        let gid = Identity.primaryGroup(of: uid) ?? uid
        let shift: UInt32 = st.uid == uid ? 6 : st.gid == gid ? 3 : 0
        let bits = (st.permissions >> shift) & 7
        return bits & 1 != 0 && (!write || bits & 2 != 0)
    }

    static func which(_ name: String, path: String) -> String? {
        for dir in path.split(separator: ":") where FileSystem.isExecutable(String(dir) + "/" + name) { return String(dir) + "/" + name }
        return nil
    }

    /// GitHub runner services (Runner.Listener, Runner.Worker) and the CARGO_HOME each would give
    /// cargo: its CARGO_HOME, else $HOME/.cargo. Processes silo may not read are skipped.
    static func runnerCargoHomes() -> [Int32: String] {
        var out: [Int32: String] = [:]
        for entry in (try? FileSystem.list("/proc")) ?? [] {
            guard let pid = Int32(entry), let comm = (try? FileSystem.read("/proc/\(pid)/comm")) ?? nil else { continue }
            let name = comm.trimmingCharacters(in: .whitespacesAndNewlines)
            guard name == "Runner.Listener" || name == "Runner.Worker" else { continue }
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
            var env: [String: String] = [:]
            for item in data.split(separator: 0) {
                let s = String(decoding: item, as: UTF8.self)
                if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            }
            if let h = env["CARGO_HOME"], !h.isEmpty { out[pid] = h } else if let home = env["HOME"] { out[pid] = home + "/.cargo" }
        }
        return out
    }
}

/// A temporary file for a child's output.
final class TempOutput {
    let path: String
    init() {
        var template = Array("/tmp/silo-doctor.XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        path = String(cString: template)
        if fd >= 0 { close(fd) }
    }
    deinit { unlink(path) }
    func read() -> String { ((try? FileSystem.read(path)) ?? nil) ?? "" }
}
