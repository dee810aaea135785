// Real cargo through `silo exec`, against a real registry served on 127.0.0.1: the workflows the
// product exists for. One registry and one server for the suite; serialized, since each test runs
// cargo builds and the machine has two cores.

import Foundation
import Testing
@testable import SiloCore
import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

@Suite("cargo through silo exec", .serialized)
final class CargoIntegrationTests {
    let registry: FixtureRegistry
    let scratch = TempDir("silo-cargo")
    let root: TempDir
    let workspace: String

    init() throws {
        registry = try FixtureRegistry()
        root = TempDir("silo-root")
        workspace = try copyWorkspace(into: scratch)
    }

    func exec(_ key: String, _ command: String, extra: [String] = []) throws -> RunResult {
        try silo(["exec", "--key", key, "--cargo-config", registry.configPath] + extra + ["--", "sh", "-c", command], root: root.path, cwd: workspace)
    }

    func downloads() -> [String] { registry.requests().filter { $0.contains(".crate ") } }

    @Test("a cold key downloads and builds; a second run builds offline with the server stopped")
    func coldThenOffline() throws {
        // CARGO_TARGET_DIR points into the cache, so the binary is there, not in the workspace.
        let built = try exec("pr-1", "cargo build 2>&1 && $CARGO_TARGET_DIR/debug/app")
        #expect(built.status == 0, "\(built.stdout)\(built.stderr)")
        #expect(built.stdout.contains("words="))
        #expect(downloads().count >= 5, "the cold build should download the crates: \(registry.requests())")
        let home = root.path + "/caches/pr-1/1/home"
        let cached = try FileManager.default.subpathsOfDirectory(atPath: home + "/registry/cache").filter { $0.hasSuffix(".crate") }
        #expect(cached.count >= 5)
        #expect(exists(home + "/.global-cache"), "cargo's last-use table lives inside the cache's CARGO_HOME")
        #expect(!exists(workspace + "/target"), "nothing is built outside the cache")

        registry.stop()
        let requestsBefore = registry.requests()
        let offline = try exec("pr-1", "cargo clean 2>&1 && cargo build --offline --locked 2>&1 && $CARGO_TARGET_DIR/debug/app")
        #expect(offline.status == 0, "\(offline.stdout)\(offline.stderr)")
        #expect(offline.stdout.contains("Compiling libc"), "the offline run really rebuilt from the cached sources")
        #expect(registry.requests() == requestsBefore, "the offline run made no request")
        try registry.start()
    }

    @Test("two keys never share a file")
    func keysShareNothing() throws {
        for key in ["pr-2", "pr-3"] {
            let r = try exec(key, "cargo build 2>&1")
            #expect(r.status == 0, "\(r.stdout)")
        }
        let a = inodes(under: root.path + "/caches/pr-2"), b = inodes(under: root.path + "/caches/pr-3")
        #expect(a.count > 100 && b.count > 100)
        #expect(a.isDisjoint(with: b))
        let crates = try FileManager.default.subpathsOfDirectory(atPath: root.path + "/caches/pr-3/1/home/registry/cache").filter { $0.hasSuffix(".crate") }
        #expect(crates.count >= 5, "each key downloaded its own crates")
    }

    @Test("8 concurrent locked jobs on one key all succeed, one at a time")
    func lockedJobsSerialize() throws {
        let warm = try exec("pr-4", "cargo build 2>&1")
        #expect(warm.status == 0, "\(warm.stdout)")
        let times = scratch.file("times")
        var jobs: [Running] = []
        for i in 0..<8 {
            let command = "echo \"start \(i) $(date +%s.%N)\" >> \(times); cargo build --offline --locked -q 2>&1; s=$?; echo \"end \(i) $(date +%s.%N)\" >> \(times); exit $s"
            let j = start(Repo.silo, ["--root", root.path, "exec", "--key", "pr-4", "--cargo-config", registry.configPath, "--", "sh", "-c", command], cwd: workspace)
            try j.run()
            jobs.append(j)
        }
        for j in jobs {
            let r = j.wait()
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        }
        // Each job's [start, end] interval must not overlap any other's.
        var intervals: [Int: (Double, Double)] = [:]
        for line in readFile(times).split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count == 3, let i = Int(f[1]), let t = Double(f[2]) else { continue }
            if f[0] == "start" { intervals[i, default: (0, 0)].0 = t } else { intervals[i, default: (0, 0)].1 = t }
        }
        #expect(intervals.count == 8)
        let sorted = intervals.values.sorted { $0.0 < $1.0 }
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            #expect(a.1 <= b.0, "jobs overlapped: one ended at \(a.1), the next started at \(b.0)")
        }
    }

    @Test("--share private runs jobs of one key side by side in distinct slots")
    func privateSideBySide() throws {
        let times = scratch.file("private-times")
        var jobs: [Running] = []
        for i in 0..<3 {
            let command = "echo \"start \(i) $SILO_SLOT $(date +%s.%N)\" >> \(times); cargo fetch -q 2>&1 && sleep 1; s=$?; echo \"end \(i) $SILO_SLOT $(date +%s.%N)\" >> \(times); exit $s"
            let j = start(Repo.silo, ["--root", root.path, "exec", "--key", "pr-5", "--share", "private", "--cargo-config", registry.configPath, "--", "sh", "-c", command], cwd: workspace)
            try j.run()
            jobs.append(j)
        }
        for j in jobs { let r = j.wait(); #expect(r.status == 0, "\(r.stdout)\(r.stderr)") }
        var slots = Set<String>()
        var starts: [Double] = [], ends: [Double] = []
        for line in readFile(times).split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count == 4, let t = Double(f[3]) else { continue }
            slots.insert(String(f[2]))
            if f[0] == "start" { starts.append(t) } else { ends.append(t) }
        }
        #expect(slots == ["1", "2", "3"])
        #expect(starts.count == 3 && ends.count == 3)
        #expect(starts.max()! < ends.min()!, "all three ran at once")
        for slot in 1...3 {
            let crates = (try? FileManager.default.subpathsOfDirectory(atPath: root.path + "/caches/pr-5/\(slot)/home/registry/cache")) ?? []
            #expect(crates.contains { $0.hasSuffix(".crate") }, "slot \(slot) has its own registry")
        }
    }

    @Test("SIGKILL of silo mid-build: the build goes on holding the lease, then the key is free and intact")
    func killSiloMidBuild() throws {
        let compiling = scratch.file("compiling")
        // The build starts cold (cargo clean), so it runs for seconds after silo is killed.
        let job = start(Repo.silo, ["--root", root.path, "exec", "--key", "pr-6", "--cargo-config", registry.configPath, "--", "sh", "-c",
                                    "cargo clean 2>/dev/null; touch \(compiling); exec cargo build 2>&1"], cwd: workspace)
        try job.run()
        #expect(eventually(60) { exists(compiling) })
        usleep(300_000)
        kill(job.processIdentifier, SIGKILL)
        #expect(job.wait().status == 137)

        let busy = try silo(["exec", "--key", "pr-6", "--wait", "0.2", "--", "true"], root: root.path)
        #expect(busy.status == 75, "the orphaned build still holds the lease: \(busy.stderr)")
        #expect(busy.stderr.contains("cargo build"))
        let ls = try silo(["ls", "--json"], root: root.path)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(ls.stdout.utf8)) as? [[String: Any]])
        let row = try #require(rows.first { $0["key"] as? String == "pr-6" })
        #expect(row["state"] as? String == "leased")
        let holders = row["holders"] as? [[String: Any]] ?? []
        let buildPid = try #require(holders.first?["job_pid"] as? Int)
        #expect(Identity.processExists(Int32(buildPid)))

        // The next locked job waits for the orphaned build, then finds its complete result.
        let next = try exec("pr-6", "cargo build --offline --locked 2>&1 && $CARGO_TARGET_DIR/debug/app", extra: ["--wait", "300"])
        #expect(next.status == 0, "\(next.stdout)")
        #expect(!Identity.processExists(Int32(buildPid)))
        #expect(!next.stdout.contains("Compiling"), "the orphaned build finished the work: \(next.stdout)")
        #expect(next.stdout.contains("words="))
    }
}
