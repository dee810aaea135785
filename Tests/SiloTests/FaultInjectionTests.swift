// Fault injection: SIGKILL silo at random points of exec, reap, verify --heal, seeding and
// promotion, trial after trial, from a seeded generator (SILO_TEST_SEED replays a run,
// SILO_FAULT_TRIALS sets how many). After each kill, the invariants: exec never gets a tombstoned
// or half-built cache, the store agrees with the disk after the next command, no lease is held by
// a dead process, and the base is unchanged.

import Foundation
import Testing
@testable import SiloCore
import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

@Suite("fault injection", .serialized)
struct FaultInjectionTests {
    /// Complete caches on disk, as "key/slot".
    func completeSlots(_ root: String) -> Set<String> {
        Set(CacheLayout(root: SiloRoot(path: root)).completeSlots().map { "\($0.0.rawValue)/\($0.1)" })
    }

    @Test("SIGKILL at random points of exec, reap, verify --heal, seeding and promotion keeps every invariant")
    func campaign() throws {
        let env = ProcessInfo.processInfo.environment
        let trials = Int(env["SILO_FAULT_TRIALS"] ?? "") ?? 100
        let seed = UInt64(env["SILO_TEST_SEED"] ?? "") ?? UInt64(Clock.now() * 1000)
        var rng = SeededRandom(seed: seed)
        let root = TempDir()
        let bulk = """
            reg=$CARGO_HOME/registry; mkdir -p $reg/index/r-0000000000000000 $reg/cache/r-0000000000000000 $reg/src/r-0000000000000000
            cd $reg/src/r-0000000000000000 && for c in $(seq 30); do mkdir -p c$c-1.0.0/src; for f in $(seq 40); do echo $c$f > c$c-1.0.0/src/f$f.rs; done; printf '{"v":1}' > c$c-1.0.0/.cargo-ok; done
            """
        #expect(try silo(["exec", "--key", "main", "--", "sh", "-c", bulk], root: root.path).status == 0)
        #expect(try silo(["promote", "--key", "main", "--no-verify"], root: root.path).status == 0)
        let baseHome = root.file("bases/default/1/home")
        let baseDigest = try treeDigest(baseHome)
        let keys = (1...6).map { "pr-\($0)" }
        for k in keys { #expect(try silo(["exec", "--key", k, "--", "true"], root: root.path).status == 0) }

        var killedMidway = 0
        for trial in 1...trials {
            let key = keys.randomElement(using: &rng)!
            let operation = Int.random(in: 0..<5, using: &rng)
            var args: [String]
            switch operation {
            case 0: args = ["exec", "--key", key, "--", "sh", "-c", "echo $RANDOM > $CARGO_TARGET_DIR/out"]
            case 1: args = ["reap", "--max-age", "0", "--min-free", "100%"]
            case 2:
                // Damage a crate first, so the heal has work to do when it is killed.
                let dir = root.file("caches/\(key)/1/home/registry/src/r-0000000000000000/c\(Int.random(in: 1...30, using: &rng))-1.0.0/src")
                _ = try? run("/bin/sh", ["-c", "rm -f \(dir)/f1.rs"])
                args = ["verify", "--key", key, "--heal"]
            case 3:
                try? FileManager.default.removeItem(atPath: root.file("caches/\(key)"))
                args = ["exec", "--key", key, "--seed", "copy", "--", "true"]
            default: args = ["promote", "--key", "main", "--no-verify"]
            }
            let p = start(Repo.silo, ["--root", root.path] + args)
            try p.run()
            usleep(useconds_t(Int.random(in: 0...40_000, using: &rng)))
            kill(p.pid, SIGKILL)
            if p.wait().status == 137 { killedMidway += 1 }
            // The job a killed exec started may still be finishing; it is short.
            usleep(30_000)

            // The next command brings the store in line; what it lists is exactly what is on disk.
            let ls = try silo(["ls", "--json"], root: root.path)
            #expect(ls.status == 0, "trial \(trial) (seed \(seed)): \(ls.stderr)")
            let rows = try JSONSerialization.jsonObject(with: Data(ls.stdout.utf8)) as? [[String: Any]] ?? []
            let listed = Set(rows.map { "\($0["key"]!)/\($0["slot"]!)" })
            #expect(listed == completeSlots(root.path), "trial \(trial) (seed \(seed), \(args[0])): store and disk differ")
            // Every complete cache is whole: a job gets its home and target, never half a cache.
            for slot in completeSlots(root.path) {
                let dir = root.file("caches/" + slot)
                #expect(exists(dir + "/home/registry") && exists(dir + "/target"), "trial \(trial) (seed \(seed)): \(slot) is not whole")
            }
            // No lease is left to a dead process.
            for row in rows where row["state"] as? String == "leased" {
                let holders = row["holders"] as? [[String: Any]] ?? []
                let alive = holders.contains { h in [h["pid"], h["job_pid"]].compactMap { $0 as? Int }.contains { Identity.processExists(Int32($0)) } }
                #expect(alive, "trial \(trial) (seed \(seed)): \(row["key"]!) is leased by nobody alive")
            }
            // The base is unchanged; any generation a promotion made is whole.
            #expect(try treeDigest(baseHome) == baseDigest, "trial \(trial) (seed \(seed)): the base changed")
            for g in (try? FileManager.default.contentsOfDirectory(atPath: root.file("bases/default"))) ?? [] where !g.hasPrefix(".") {
                #expect(exists(root.file("bases/default/\(g)/BASE")), "trial \(trial) (seed \(seed)): generation \(g) is partial")
            }
        }
        print("fault injection: \(trials) trials, \(killedMidway) killed while running, seed \(seed)")
        #expect(killedMidway >= trials / 4, "most kills should land while silo runs: \(killedMidway) of \(trials)")
        // A last exec of every key works.
        for k in keys { #expect(try silo(["exec", "--key", k, "--", "true"], root: root.path).status == 0) }
    }
}
