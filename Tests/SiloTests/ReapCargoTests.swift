// `silo reap` beside real cargo builds: the collector racing jobs, and crate-level pruning under
// cargo's own lock.

import Foundation
import Testing
@testable import SiloCore
import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

@Suite("reap with cargo", .serialized)
final class ReapCargoTests {
    let registry: FixtureRegistry
    let scratch = TempDir("silo-reap-cargo")

    init() throws {
        registry = try FixtureRegistry()
    }

    @Test("6 concurrent jobs on 3 keys while reap --max-age 0 --min-free 100% loops: no job fails, every idle cache is collected")
    func reapRacesJobs() throws {
        let root = TempDir()
        let seconds = Int(ProcessInfo.processInfo.environment["SILO_SOAK_SECONDS"] ?? "") ?? 60
        var runners: [Running] = []
        for i in 0..<6 {
            let workspace = try copyWorkspace(into: scratch, named: "ws\(i)")
            let share = i < 3 ? "locked" : "private"
            let script = """
                end=$((SECONDS + \(seconds)))
                while [ $SECONDS -lt $end ]; do
                  "$SILO" --root "$ROOT" --quiet exec --key k\(i % 3) --share \(share) --cargo-config "$CONFIG" -- cargo build -q >>"$LOG.out" 2>&1
                  echo $? >>"$LOG"
                done
                """
            let r = start("/bin/bash", ["-c", script], environment: env(["SILO": Repo.silo, "ROOT": root.path, "CONFIG": registry.configPath, "LOG": scratch.file("job\(i)")]), cwd: workspace)
            try r.run()
            runners.append(r)
        }
        let reaper = start("/bin/bash", ["-c", """
            end=$((SECONDS + \(seconds)))
            while [ $SECONDS -lt $end ]; do
              "$SILO" --root "$ROOT" --quiet reap --max-age 0 --min-free 100% --json >>"$LOG.json"; echo $? >>"$LOG"; sleep 0.3
            done
            """], environment: env(["SILO": Repo.silo, "ROOT": root.path, "LOG": scratch.file("reap")]))
        try reaper.run()
        for r in runners { _ = r.wait() }
        _ = reaper.wait()

        var jobs = 0
        for i in 0..<6 {
            let statuses = readFile(scratch.file("job\(i)")).split(separator: "\n")
            jobs += statuses.count
            #expect(statuses.allSatisfy { $0 == "0" }, "job runner \(i): statuses \(statuses): \(readFile(scratch.file("job\(i).out")).suffix(2000))")
        }
        let reaps = readFile(scratch.file("reap")).split(separator: "\n")
        #expect(reaps.allSatisfy { $0 == "0" }, "reap statuses \(reaps)")
        let deleted = readFile(scratch.file("reap.json")).components(separatedBy: "\"caches_deleted\" : ").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }.reduce(0, +)
        #expect(jobs >= 6, "each runner ran at least one build (\(jobs))")
        #expect(deleted >= 3, "the reaper really collected caches between jobs (\(deleted) deletions in \(reaps.count) runs)")

        let last = try silo(["reap", "--max-age", "0", "--min-free", "100%"], root: root.path)
        #expect(last.status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.file("caches")).isEmpty, "every idle cache collected")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.file("trash")).isEmpty)
    }

    @Test("--max-src-age removes crate sources under cargo's lock, keeps .crate files and index; offline builds re-extract")
    func maxSrcAge() throws {
        let root = TempDir()
        let workspace = try copyWorkspace(into: scratch, named: "src-age")
        let built = try exec(root, "s", "cargo build 2>&1", cwd: workspace)
        #expect(built.status == 0, "\(built.stdout)")
        let home = root.file("caches/s/1/home")
        let srcDirs = try registrySubdirs(home + "/registry/src")
        #expect(srcDirs.count >= 5)
        let crates = try registrySubdirs(home + "/registry/cache")
        // cargo stamps last use in whole seconds; "unused for longer than 0s" needs a second to pass.
        usleep(1_100_000)

        let r = try silo(["reap", "--max-src-age", "0", "--json"], root: root.path)
        #expect(r.status == 0, "\(r.stderr)")
        let sources = try jsonObject(r.stdout)["crate_sources"] as? [[String: Any]] ?? []
        #expect(Set(sources.compactMap { $0["crate"] as? String }) == Set(srcDirs.map { String($0.split(separator: "/").last!) }))
        #expect(sources.allSatisfy { $0["action"] as? String == "deleted" })
        #expect(try registrySubdirs(home + "/registry/src").isEmpty)
        #expect(try registrySubdirs(home + "/registry/cache") == crates, "the .crate files stay")
        #expect(exists(home + "/registry/index"), "the index stays")
        #expect(exists(root.file("caches/s/1/.silo-cache")), "the cache itself stays")

        registry.stop()
        defer { try? registry.start() }
        let offline = try exec(root, "s", "cargo build --offline --locked 2>&1 && $CARGO_TARGET_DIR/debug/app", cwd: workspace)
        #expect(offline.status == 0, "\(offline.stdout)")
        #expect(offline.stdout.contains("words="))
        let again = try registrySubdirs(home + "/registry/src")
        #expect(Set(again) == Set(srcDirs), "cargo re-extracted every crate from its .crate")
        for dir in again { #expect(readFile(home + "/registry/src/" + dir + "/.cargo-ok") == "{\"v\":1}") }
    }

    @Test("while a build holds cargo's lock, reap skips that cache's crate sources and says so")
    func srcAgeSkipsBusyCache() throws {
        let root = TempDir()
        let crate = scratch.file("slow")
        try FileManager.default.createDirectory(atPath: crate + "/src", withIntermediateDirectories: true)
        try """
            [package]
            name = "slow"
            version = "0.1.0"
            edition = "2021"
            build = "build.rs"

            [dependencies]
            fnv = "1.0.7"
            """.write(toFile: crate + "/Cargo.toml", atomically: true, encoding: .utf8)
        // The build script waits for a gate file, so the build (and cargo's lock) lasts until the test says.
        try """
            fn main() {
                let gate = std::env::var("SLOW_GATE").unwrap();
                while !std::path::Path::new(&gate).exists() { std::thread::sleep(std::time::Duration::from_millis(50)); }
                println!("cargo:rerun-if-changed=build.rs");
            }
            """.write(toFile: crate + "/build.rs", atomically: true, encoding: .utf8)
        try "pub fn hasher() -> fnv::FnvHasher { fnv::FnvHasher::default() }\n"
            .write(toFile: crate + "/src/lib.rs", atomically: true, encoding: .utf8)
        let gate = scratch.file("gate")
        var env = baseEnvironment()
        env["SLOW_GATE"] = gate
        let build = start(Repo.silo, ["--root", root.path, "exec", "--key", "busy", "--cargo-config", registry.configPath, "--", "cargo", "build"], environment: env, cwd: crate)
        try build.run()
        let home = root.file("caches/busy/1/home")
        #expect(eventually(120) { ((try? registrySubdirs(home + "/registry/src")) ?? []).count >= 1 && exists(root.file("caches/busy/1/target/debug/build")) })
        usleep(500_000)

        let during = try silo(["reap", "--max-src-age", "0", "--json"], root: root.path)
        #expect(during.status == 0)
        let report = try jsonObject(during.stdout)
        let skipped = report["skipped"] as? [[String: Any]] ?? []
        #expect(skipped.count == 1 && (skipped.first?["reason"] as? String ?? "").contains(".package-cache-mutate"), "\(skipped)")
        #expect((report["crate_sources"] as? [Any] ?? []).isEmpty)
        #expect(try registrySubdirs(home + "/registry/src").count >= 1, "nothing was deleted under the running build")

        _ = FileManager.default.createFile(atPath: gate, contents: nil)
        let done = build.wait()
        #expect(done.status == 0, "\(done.stderr)")
        usleep(1_100_000)
        let after = try silo(["reap", "--max-src-age", "0", "--json"], root: root.path)
        #expect(((try jsonObject(after.stdout))["crate_sources"] as? [Any] ?? []).count >= 1)
    }

    // MARK: helpers

    func env(_ extra: [String: String]) -> [String: String] {
        baseEnvironment().merging(extra) { $1 }
    }

    func exec(_ root: TempDir, _ key: String, _ command: String, cwd: String) throws -> RunResult {
        try silo(["exec", "--key", key, "--cargo-config", registry.configPath, "--", "sh", "-c", command], root: root.path, cwd: cwd)
    }

    /// `<reg>/<name>` entries of registry/src or registry/cache, sorted.
    func registrySubdirs(_ path: String) throws -> [String] {
        var out: [String] = []
        for reg in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] where !reg.hasPrefix(".") {
            for name in try FileManager.default.contentsOfDirectory(atPath: path + "/" + reg) { out.append(reg + "/" + name) }
        }
        return out.sorted()
    }
}
