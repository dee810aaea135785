// Bases under bad input, full disks, SIGKILL and concurrency: whatever happens, no half-built base
// or cache is ever visible, and reap cleans up what a killed promotion or seeding left.

import Foundation
import Testing
@testable import SiloCore
import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

/// Makes key `key` by a job that writes `crates` fake extracted crates of `files` files each into
/// its registry (no cargo: the failure tests need bulk, not builds).
private func makeBulkKey(_ key: String, root: String, crates: Int, files: Int, bytesPerFile: Int = 64) throws {
    let script = """
        set -e
        reg=$CARGO_HOME/registry
        mkdir -p $reg/index/fake-0000000000000000/.cache $reg/cache/fake-0000000000000000 $reg/src/fake-0000000000000000
        cd $reg/src/fake-0000000000000000
        blob=$(head -c \(bytesPerFile) /dev/zero | tr '\\0' x)
        for c in $(seq \(crates)); do
            mkdir -p crate$c-1.0.0/src
            for f in $(seq \(files)); do printf '%s%s' "$f" "$blob" > crate$c-1.0.0/src/f$f.rs; done
            printf '{"v":1}' > crate$c-1.0.0/.cargo-ok
            echo x > $reg/cache/fake-0000000000000000/crate$c-1.0.0.crate
        done
        """
    let r = try silo(["exec", "--key", key, "--", "sh", "-c", script], root: root)
    guard r.status == 0 else { throw TestFailure("bulk key \(key): \(r.stderr)") }
}

private func generations(_ root: String, _ name: String = "default") -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: root + "/bases/" + name)) ?? []).sorted()
}

private func cacheEntries(_ root: String, _ key: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: root + "/caches/" + key)) ?? []).sorted()
}

@Suite("bases: bad input, full disks, kills, concurrency", .serialized)
struct BaseFailureTests {
    @Test("promote refuses untrusted, unknown and badly named keys, naming the value; nothing is published")
    func promoteRefusals() throws {
        let root = TempDir()
        for k in ["pr-12", "mq-main-pr-12", "feature-x", "main"] { try make(k, root: root.path) }
        let cases: [([String], Int32, String)] = [
            (["--key", "pr-12"], 2, "key 'pr-12' matches pr-*: it runs untrusted code and is never promoted"),
            (["--key", "mq-main-pr-12"], 2, "matches mq-*"),
            (["--key", "pr-12", "--trusted", "*"], 2, "matches pr-*"),
            (["--key", "feature-x"], 2, "key 'feature-x' is not trusted (trusted: main, master, release-*)"),
            (["--key", "release-9"], 2, "key 'release-9' has no cache in slot 1"),
            (["--key", "main", "--as", "bad/name"], 2, "--as 'bad/name' is not a base name"),
            (["--key", "main", "--trusted", "ma[in"], 2, "--trusted 'ma[in' contains '['"),
            (["--key", "main", "--slot", "0"], 2, "--slot '0' is not a slot"),
            (["--as", "x"], 2, "'silo promote' needs --key KEY"),
        ]
        for (args, status, message) in cases {
            let r = try silo(["promote"] + args, root: root.path)
            #expect(r.status == status, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
        }
        #expect(!exists(root.file("bases/default")) || generations(root.path).isEmpty)
        let trusted = try silo(["promote", "--key", "feature-x", "--trusted", "feature-*"], root: root.path)
        #expect(trusted.status == 0, "\(trusted.stderr)")
        #expect(generations(root.path) == ["1"])

        // exec's side: a base that does not exist, a bad method, a bad user.
        for (args, message) in [(["--from", "nope"], "--from nope: no base of that name (bases: default)"),
                                (["--seed", "zip"], "--seed 'zip' is not a seeding method; expected reflink, hardlink or copy"),
                                (["--user", "no-such-user-x"], "no user 'no-such-user-x'"),
                                (["--user", "1000:abc"], "has a bad group 'abc'")] {
            let r = try silo(["exec", "--key", "pr-3"] + args + ["--", "true"], root: root.path)
            #expect(r.status == 2 && r.stderr.contains(message), "\(args): \(r.stderr)")
            #expect(cacheEntries(root.path, "pr-3").isEmpty, "nothing was created for \(args)")
        }
    }

    @Test("a private slot starts from the base too; --from none starts cold; --from NAME picks a base; an existing cache is never reseeded")
    func choosingTheBase() throws {
        let root = TempDir()
        try makeBulkKey("main", root: root.path, crates: 3, files: 3)
        #expect(try silo(["promote", "--key", "main", "--no-verify"], root: root.path).status == 0)
        #expect(try silo(["promote", "--key", "main", "--no-verify", "--as", "other"], root: root.path).status == 0)
        let crate = "home/registry/src/fake-0000000000000000/crate3-1.0.0/.cargo-ok"

        let started = root.file("started")
        let holder = start(Repo.silo, ["--root", root.path, "exec", "--key", "pr-5", "--", "sh", "-c", "touch \(started); sleep 30"])
        try holder.run()
        defer { holder.terminate(); _ = holder.wait() }
        #expect(eventually { exists(started) })
        let side = try silo(["exec", "--key", "pr-5", "--share", "private", "--", "true"], root: root.path)
        #expect(side.status == 0 && side.stderr.contains("created cache key 'pr-5' slot 2 from base default/1"), "\(side.stderr)")
        #expect(exists(root.file("caches/pr-5/2/" + crate)))

        let cold = try silo(["exec", "--key", "pr-6", "--from", "none", "--", "true"], root: root.path)
        #expect(cold.status == 0 && !cold.stderr.contains("from base"), "\(cold.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.file("caches/pr-6/1/home/registry")).isEmpty)
        #expect(CacheLayout.base(ofSlot: root.file("caches/pr-6/1")) == nil)

        let named = try silo(["exec", "--key", "pr-7", "--from", "other", "--", "true"], root: root.path)
        #expect(named.stderr.contains("from base other/1"), "\(named.stderr)")
        let again = try silo(["exec", "--key", "pr-7", "--from", "default", "--", "true"], root: root.path)
        #expect(again.status == 0 && !again.stderr.contains("created"), "an existing cache is used as it is: \(again.stderr)")
        #expect(CacheLayout.base(ofSlot: root.file("caches/pr-7/1"))?.description == "other/1")
    }

    @Test("promote waits for the key's job only when asked, naming the holder; --user needs root")
    func promoteBusy() throws {
        let root = TempDir()
        try makeBulkKey("main", root: root.path, crates: 1, files: 1)
        let started = root.file("started")
        let job = start(Repo.silo, ["--root", root.path, "exec", "--key", "main", "--", "sh", "-c", "touch \(started); sleep 1"])
        try job.run()
        #expect(eventually { exists(started) })
        let busy = try silo(["promote", "--key", "main", "--no-verify"], root: root.path)
        #expect(busy.status == 75 && busy.stderr.contains("is in use (held by") && busy.stderr.contains("sleep 1"), "\(busy.stderr)")
        let waited = try silo(["promote", "--key", "main", "--no-verify", "--wait", "30"], root: root.path)
        #expect(waited.status == 0, "\(waited.stderr)")
        #expect(job.wait().status == 0)
        #expect(generations(root.path) == ["1"])

        if runningAsRoot {
            try sh("chmod 755 \(root.path)")
            let r = try siloAs(uid: 1000, ["exec", "--key", "pr-1", "--user", "1001", "--", "true"], root: root.path + "/elsewhere")
            #expect(r.status == 2 && r.stderr.contains("--user 1001:1001 needs silo to run as root"), "\(r.stderr)")
            #expect(!exists(root.path + "/elsewhere"), "nothing was created")
        }
    }

    @Test("promote refuses a key whose cache cargo would fail on, unless --no-verify")
    func promoteVerifies() throws {
        let root = TempDir()
        try makeBulkKey("main", root: root.path, crates: 2, files: 2)
        let r = try silo(["promote", "--key", "main"], root: root.path)
        #expect(r.status != 0 && r.stderr.contains("problem(s) cargo would not repair"), "\(r.stderr)")
        #expect(generations(root.path).isEmpty)
        let forced = try silo(["promote", "--key", "main", "--no-verify"], root: root.path)
        #expect(forced.status == 0, "\(forced.stderr)")
    }

    @Test("a full filesystem during seeding or promotion: one clear error, no cache or base left visible",
          .enabled(if: runningAsRoot, "needs root for a loop mount"))
    func diskFull() throws {
        let fs = try LoopMount("ext4", megabytes: 48)
        let root = fs.mountPoint + "/root"
        try makeBulkKey("main", root: root, crates: 20, files: 50, bytesPerFile: 8192) // ~8 MiB in 4 KiB blocks
        let promoted = try silo(["promote", "--key", "main", "--no-verify"], root: root)
        #expect(promoted.status == 0, "\(promoted.stderr)")
        // Leave about 2 MiB free: a copy seeding (a root job) needs ~8.
        try sh("fallocate -l $(( $(df --output=avail -B1 \(fs.mountPoint) | tail -1) - 2*1024*1024 )) \(fs.mountPoint)/filler")

        let seeded = try silo(["exec", "--key", "pr-1", "--", "true"], root: root)
        #expect(seeded.status == 1, "\(seeded.stderr)")
        #expect(seeded.stderr.contains("No space left on device") && seeded.stderr.contains("nothing was created"), "\(seeded.stderr)")
        #expect(cacheEntries(root, "pr-1").isEmpty, "no cache and no staging left: \(cacheEntries(root, "pr-1"))")

        let again = try silo(["promote", "--key", "main", "--no-verify"], root: root)
        #expect(again.status == 1 && again.stderr.contains("No space left on device") && again.stderr.contains("nothing was published"), "\(again.stderr)")
        #expect(generations(root) == ["1"], "no generation 2 and no staging: \(generations(root))")

        // With room again, both work.
        try sh("rm \(fs.mountPoint)/filler")
        #expect(try silo(["exec", "--key", "pr-1", "--", "true"], root: root).status == 0)
        #expect(CacheLayout.isComplete(root + "/caches/pr-1/1"))
    }

    @Test("SIGKILL during seeding or promotion leaves no partial cache or base; the next run and reap clean up")
    func killed() throws {
        let root = TempDir()
        try makeBulkKey("main", root: root.path, crates: 200, files: 200, bytesPerFile: 16)
        #expect(try silo(["promote", "--key", "main", "--no-verify"], root: root.path).status == 0)
        var rng = SeededRandom(seed: UInt64(ProcessInfo.processInfo.environment["SILO_TEST_SEED"] ?? "") ?? UInt64(Clock.now() * 1000))
        // One full seeding, to spread the kills over its length.
        let t0 = Clock.monotonic()
        #expect(try silo(["exec", "--key", "pr-0", "--seed", "copy", "--", "true"], root: root.path).status == 0)
        let length = Clock.monotonic() - t0
        let t1 = Clock.monotonic()
        #expect(try silo(["promote", "--key", "main", "--no-verify"], root: root.path).status == 0)
        let promotionLength = Clock.monotonic() - t1
        var interruptedSeedings = 0, interruptedPromotions = 0
        var trials = 0
        // At least 4 trials, and more (up to 16) until both kinds were caught mid-way at least once:
        // on a loaded machine a kill can land before the work starts or after it ends.
        for trial in 1...16 where trial <= 4 || interruptedSeedings == 0 || interruptedPromotions == 0 {
            trials = trial
            let key = "pr-\(trial)"
            let p = start(Repo.silo, ["--root", root.path, "exec", "--key", key, "--seed", "copy", "--", "true"])
            try p.run()
            // Odd trials kill at a random point of a seeding's length; even ones as soon as the
            // staging directory has sources in it, which is mid-way however loaded the machine is.
            if trial % 2 == 1 {
                usleep(useconds_t(Double.random(in: 0.3...0.9, using: &rng) * length * 1e6))
            } else {
                _ = eventually(10) { exists(root.file("caches/\(key)/.new-1-\(p.pid)/home/registry/src")) }
            }
            kill(p.pid, SIGKILL)
            _ = p.wait()
            let entries = cacheEntries(root.path, key)
            if entries.contains(where: { $0.hasPrefix(".new-") }) { interruptedSeedings += 1 }
            // Either it finished before the kill, or nothing but a staging directory is left.
            #expect(entries == ["1"] && CacheLayout.isComplete(root.file("caches/\(key)/1")) || entries.allSatisfy { $0.hasPrefix(".new-") }, "trial \(trial): \(entries)")
            let ls = try silo(["ls", "--json"], root: root.path)
            let keys = (try JSONSerialization.jsonObject(with: Data(ls.stdout.utf8)) as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
            #expect(keys.contains(key) == (entries == ["1"]), "ls lists only complete caches: \(keys)")
            let retry = try silo(["exec", "--key", key, "--", "sh", "-c", "test -f $CARGO_HOME/registry/src/fake-0000000000000000/crate100-1.0.0/.cargo-ok"], root: root.path)
            #expect(retry.status == 0, "the next job gets a whole seeded cache: \(retry.stderr)")

            let q = start(Repo.silo, ["--root", root.path, "promote", "--key", "main", "--no-verify"])
            try q.run()
            if trial % 2 == 1 {
                usleep(useconds_t(Double.random(in: 0.3...0.9, using: &rng) * promotionLength * 1e6))
            } else {
                _ = eventually(10) { exists(root.file("bases/default/.new-\(q.pid)/home/registry/src")) }
            }
            kill(q.pid, SIGKILL)
            _ = q.wait()
            if generations(root.path).contains(where: { $0.hasPrefix(".new-") }) { interruptedPromotions += 1 }
            for g in generations(root.path) where !g.hasPrefix(".new-") {
                #expect(exists(root.file("bases/default/\(g)/BASE")), "generation \(g) is whole")
            }
        }
        #expect(interruptedSeedings > 0 && interruptedPromotions > 0, "the kills landed mid-way: \(interruptedSeedings) seedings, \(interruptedPromotions) promotions")
        let reap = try silo(["reap", "--json", "--max-age", "30d"], root: root.path)
        #expect(reap.status == 0, "\(reap.stderr)")
        #expect(generations(root.path).allSatisfy { !$0.hasPrefix(".new-") }, "reap removed the killed promotions: \(generations(root.path))")
        for trial in 1...trials {
            #expect(cacheEntries(root.path, "pr-\(trial)") == ["1"], "reap removed the killed seedings' staging")
        }
    }

    @Test("promotions while keys are being seeded: every cache is one whole generation; reap keeps a retired one while a cache shares it")
    func concurrentPromoteAndSeed() throws {
        let root = TempDir()
        try makeBulkKey("main", root: root.path, crates: 20, files: 50, bytesPerFile: 16)
        #expect(try silo(["promote", "--key", "main", "--no-verify"], root: root.path).status == 0)
        // Promoters add a file to main between promotions, so each generation differs.
        let promoter = start("/bin/sh", ["-c", """
            for i in 1 2 3 4 5 6; do
                \(Repo.silo) --root \(root.path) exec --key main -- sh -c "echo $i > \\$CARGO_HOME/registry/src/fake-0000000000000000/crate1-1.0.0/gen" || exit 1
                \(Repo.silo) --root \(root.path) promote --key main --no-verify --wait 30 || exit 1
            done
            """])
        try promoter.run()
        var seeders: [Running] = []
        for i in 1...12 {
            let s = start(Repo.silo, ["--root", root.path, "exec", "--key", "pr-\(i)", "--seed", "copy", "--", "true"])
            try s.run()
            seeders.append(s)
            usleep(30_000)
        }
        for s in seeders { #expect(s.wait().status == 0, "\(s.result().stderr)") }
        #expect(promoter.wait().status == 0, "\(promoter.result().stderr)")
        #expect(generations(root.path) == (1...7).map(String.init).sorted())

        // Each seeded cache equals, file for file, the generation its marker names.
        var used = Set<String>()
        for i in 1...12 {
            let slot = root.file("caches/pr-\(i)/1")
            let ref = try #require(CacheLayout.base(ofSlot: slot))
            used.insert(String(ref.generation))
            let mine = try run("/bin/sh", ["-c", "cd \(slot)/home/registry && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum"]).stdout
            let base = try run("/bin/sh", ["-c", "cd \(root.path)/bases/\(ref.name)/\(ref.generation)/home/registry && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum"]).stdout
            #expect(mine == base, "pr-\(i) is a whole copy of \(ref)")
        }

        // Reap: the current generation stays, retired ones stay while a cache names them.
        let reap = try jsonObject(try silo(["reap", "--json"], root: root.path).stdout)
        let bases = (reap["bases"] as? [[String: Any]] ?? []).reduce(into: [String: String]()) { $0[$1["base"] as! String] = $1["action"] as? String }
        for g in 1...7 {
            let expected = g == 7 || used.contains(String(g)) ? "kept" : "deleted"
            #expect(bases["default/\(g)"] == expected, "default/\(g): \(bases)")
        }
        // Once the caches are gone, their retired generations go too.
        #expect(try silo(["reap", "--max-age", "0"], root: root.path).status == 0)
        #expect(generations(root.path) == ["7"])
    }
}

/// Runs `silo exec --key` with a shell command, expecting success.
private func make(_ key: String, _ script: String = "true", root: String) throws {
    let r = try silo(["exec", "--key", key, "--", "sh", "-c", script], root: root)
    guard r.status == 0 else { throw TestFailure("exec \(key) failed: \(r.stderr)") }
}
