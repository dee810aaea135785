// The incident behind silo, replayed (reliability/incident-replay): 16 concurrent real cargo
// builds per round, root containers and uid 1000 jobs, an mtime sweeper hollowing out registries
// and, for silo, an aggressive reap. The seed's shared-registry setup must fail; silo's must not.
// SILO_INCIDENT_ROUNDS sets the rounds (1 here by default; RELIABILITY.md has the full run).

import Foundation
import Testing
@testable import SiloCore
import SiloSystem

@Suite("incident", .serialized)
struct IncidentTests {
    @Test("the archive-mtime trap: silo gives a cache's sources the time of use before a job, at most every few hours")
    func freshness() throws {
        let root = TempDir()
        let src = root.file("caches/pr-1/1/home/registry/src/r-0000000000000000/c-1.0.0/src")
        #expect(try silo(["exec", "--key", "pr-1", "--", "true"], root: root.path).status == 0)
        try sh("mkdir -p \(src) && echo x > \(src)/lib.rs && touch -d 2006-07-24 \(src)/lib.rs && rm -f \(root.file("caches/pr-1/1/.silo-freshened"))")
        let r = try silo(["exec", "--key", "pr-1", "--", "sh", "-c", "find $CARGO_HOME/registry/src -type f -mtime +1"], root: root.path)
        #expect(r.status == 0 && r.stdout.isEmpty, "a sweep during the job finds nothing old: \(r.stdout)")
        #expect(r.stderr.contains("set 1 source files of key 'pr-1' slot 1 to the time of use"), "\(r.stderr)")
        let mtime = try #require(try FileSystem.status(src + "/lib.rs")).modifiedTime
        #expect(Clock.now() - mtime < 60)
        // Within the interval the walk is skipped: one stat per job, not a walk.
        try sh("touch -d 2006-07-24 \(src)/lib.rs")
        let again = try silo(["exec", "--key", "pr-1", "--", "true"], root: root.path)
        #expect(!again.stderr.contains("time of use"))
        #expect(try #require(try FileSystem.status(src + "/lib.rs")).modifiedTime < 1_200_000_000)
    }

    @Test("16 concurrent jobs under an mtime sweeper: the shared-registry setup fails, silo's does not",
          .enabled(if: runningAsRoot, "needs root for containers and uid 1000 jobs"))
    func replay() throws {
        let rounds = ProcessInfo.processInfo.environment["SILO_INCIDENT_ROUNDS"] ?? "1"
        let logs = TempDir("silo-incident-logs")
        var env = baseEnvironment()
        env["ROUNDS"] = rounds
        env["OUT"] = logs.path
        env["SILO"] = Repo.silo
        let r = try run(Repo.root + "/reliability/incident-replay", [], environment: env, cwd: Repo.root)
        #expect(r.status == 0, "\(r.stderr)")
        func failed(_ setup: String) -> Int? {
            guard let line = r.stdout.split(separator: "\n").first(where: { $0.hasPrefix(setup + ":") }),
                  let m = firstMatch(#"(\d+) jobs, (\d+) failed"#, String(line)) else { return nil }
            return Int(m.1[2])
        }
        let baseline = try #require(failed("baseline"), "\(r.stdout)\(r.stderr)")
        let withSilo = try #require(failed("silo"), "\(r.stdout)\(r.stderr)")
        #expect(baseline > 0, "the seed's setup fails under the sweeper: \(r.stdout)")
        let siloLogs = (try? FileManager.default.contentsOfDirectory(atPath: logs.path).filter { $0.hasPrefix("silo-") }) ?? []
        #expect(withSilo == 0, "silo's setup: \(r.stdout) \(siloLogs.map { readFile(logs.file($0)).suffix(600) })")
    }
}
