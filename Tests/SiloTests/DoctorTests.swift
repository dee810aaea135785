// `silo doctor`: findings as a pure function of host facts (a table), and the gathering on this
// host: a fake old cargo and a docker CLI on PATH, a root the runner cannot write, ext4 against
// XFS with reflink, and GitHub runner services sharing one CARGO_HOME.

import Foundation
import Testing
@testable import SiloCore
import SiloSystem

@Suite("doctor", .serialized)
struct DoctorTests {
    func facts(_ change: (inout HostFacts) -> Void = { _ in }) -> HostFacts {
        var f = HostFacts(root: "/var/lib/silo", filesystemType: 0xEF53, runnerUID: 1000, runnerCanWrite: true, reflink: true,
                          cargoVersion: "cargo 1.95.0 (f2d3ce0bd 2025-12-12)", runnerCargoHomes: [:], docker: false)
        change(&f)
        return f
    }

    @Test("each trap is one finding with its fix; a clean host has none")
    func table() {
        #expect(Doctor.findings(facts()).isEmpty)
        let cases: [(String, (inout HostFacts) -> Void)] = [
            ("network-filesystem", { $0.filesystemType = 0x6969 }),
            ("network-filesystem", { $0.filesystemType = 0xFE534D42 }),
            ("overlay-filesystem", { $0.filesystemType = 0x794c7630 }),
            ("root-not-writable", { $0.runnerCanWrite = false }),
            ("no-reflink", { $0.reflink = false }),
            ("old-cargo", { $0.cargoVersion = "cargo 1.73.0 (9c4383fb5 2023-08-26)" }),
            ("no-cargo", { $0.cargoVersion = nil }),
            ("shared-cargo-home", { $0.runnerCargoHomes = [101: "/home/runner/.cargo", 202: "/home/runner/.cargo", 303: "/srv/r3/.cargo"] }),
            ("docker", { $0.docker = true }),
        ]
        for (check, change) in cases {
            let found = Doctor.findings(facts(change))
            #expect(found.map(\.check) == [check], "\(check): \(found)")
            #expect(found.allSatisfy { !$0.fix.isEmpty })
        }
        #expect(Doctor.findings(facts { $0.cargoVersion = "cargo 1.74.0 (ecb9851af 2023-10-18)" }).isEmpty, "1.74 takes the lock")
        #expect(Doctor.findings(facts { $0.reflink = nil }).isEmpty, "not probed is no finding")
        #expect(Doctor.findings(facts { $0.runnerCargoHomes = [1: "/a/.cargo", 2: "/b/.cargo"] }).isEmpty, "separate homes are fine")
    }

    /// A PATH with a fake cargo printing `version` (and a docker CLI when asked) before the system's.
    func fakePath(_ dir: TempDir, cargo version: String?, docker: Bool) throws -> String {
        try FileManager.default.createDirectory(atPath: dir.file("bin"), withIntermediateDirectories: true)
        if let version { try "#!/bin/sh\necho '\(version)'\n".write(toFile: dir.file("bin/cargo"), atomically: true, encoding: .utf8) }
        if docker { try "#!/bin/sh\nexit 0\n".write(toFile: dir.file("bin/docker"), atomically: true, encoding: .utf8) }
        try sh("chmod 755 \(dir.file("bin"))/* 2>/dev/null || true")
        return dir.file("bin") + ":/usr/bin:/bin"
    }

    func doctor(_ root: String, path: String, uid: Int = 1000) throws -> (Int32, [String]) {
        var env = baseEnvironment()
        env["PATH"] = path
        let r = try run(Repo.silo, ["--root", root, "doctor", "--json", "--uid", String(uid)], environment: env)
        let checks = (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []).compactMap { $0["check"] as? String }
        return (r.status, checks)
    }

    @Test("on this host: an old cargo, docker, a root the runner cannot write, and no reflink on ext4 are found",
          .enabled(if: runningAsRoot, "needs root to make a root of another uid"))
    func gathered() throws {
        let dir = TempDir(), root = TempDir()
        try sh("chown 0:0 \(root.path) && chmod 755 \(root.path)")
        let (status, checks) = try doctor(root.path, path: try fakePath(dir, cargo: "cargo 1.70.0 (7fe40dc8c 2023-04-27)", docker: true))
        #expect(status == 1)
        #expect(checks == ["root-not-writable", "no-reflink", "old-cargo", "docker"], "\(checks)")
        try sh("chown 1000:1000 \(root.path)")
        let newer = TempDir() // (kept alive: the fake cargo lives in it)
        let (_, after) = try doctor(root.path, path: try fakePath(newer, cargo: "cargo 1.95.0 (f2d3ce0bd 2025-12-12)", docker: false))
        #expect(after == ["no-reflink"], "\(after)")
    }

    @Test("a clean host: XFS with reflink, writable by the runner, a new cargo, no docker: exit 0",
          .enabled(if: runningAsRoot && LoopMount.xfsAvailable, "needs root and mkfs.xfs for the XFS root; skipped"))
    func clean() throws {
        let xfs = try LoopMount("xfs", megabytes: 320)
        let root = xfs.mountPoint + "/silo"
        try sh("mkdir \(root) && chown 1000:1000 \(root)")
        let bin = TempDir() // (kept alive: the fake cargo lives in it)
        let path = try fakePath(bin, cargo: "cargo 1.95.0 (f2d3ce0bd 2025-12-12)", docker: false)
        let (status, checks) = try doctor(root, path: path)
        #expect(status == 0 && checks.isEmpty, "\(checks)")
        var env = baseEnvironment()
        env["PATH"] = path
        let text = try run(Repo.silo, ["--root", root, "doctor", "--uid", "1000"], environment: env)
        #expect(text.stdout.contains("no known trap found"), "\(text.stdout)")
    }

    @Test("GitHub runner services sharing one CARGO_HOME are found, by pid", .enabled(if: runningAsRoot, "reads other processes' environments"))
    func sharedHome() throws {
        let dir = TempDir()
        try sh("cp /bin/sleep \(dir.file("Runner.Listener"))")
        var env = baseEnvironment()
        env["CARGO_HOME"] = "/srv/shared-cargo"
        let a = start(dir.file("Runner.Listener"), ["30"], environment: env), b = start(dir.file("Runner.Listener"), ["30"], environment: env)
        try a.run(); try b.run()
        defer { a.terminate(); b.terminate(); _ = a.wait(); _ = b.wait() }
        #expect(eventually { (try? String(contentsOfFile: "/proc/\(b.pid)/comm", encoding: .utf8))?.hasPrefix("Runner.Listener") == true })
        let r = try run(Repo.silo, ["doctor", "--json", "--uid", "0"], environment: baseEnvironment())
        let findings = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]] ?? []
        let shared = try #require(findings.first { $0["check"] as? String == "shared-cargo-home" }, "\(r.stdout)")
        let problem = shared["problem"] as? String ?? ""
        #expect(problem.contains("/srv/shared-cargo") && problem.contains(String(a.pid)) && problem.contains(String(b.pid)), "\(problem)")
    }
}
