// `silo reap` against real trees, real leases, real mounts and real uids (no cargo here; see
// ReapCargoTests for the workloads with cargo).

import Foundation
import Testing
@testable import SiloCore
import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

/// Runs `silo exec --key` with a shell command, expecting success.
private func make(_ key: String, _ script: String = "true", root: String) throws {
    let r = try silo(["exec", "--key", key, "--", "sh", "-c", script], root: root)
    guard r.status == 0 else { throw TestFailure("exec \(key) failed: \(r.stderr)") }
}

private func reapJSON(_ args: [String], root: String) throws -> (RunResult, [String: Any]) {
    let r = try silo(["reap", "--json"] + args, root: root)
    return (r, try jsonObject(r.stdout))
}

private func actions(_ report: [String: Any]) -> [String: String] {
    var out: [String: String] = [:]
    for c in report["caches"] as? [[String: Any]] ?? [] {
        out["\(c["key"]!)/\(c["slot"]!)"] = c["action"] as? String
    }
    return out
}

@Suite("reap", .serialized)
struct ReapTests {
    @Test("a dry run changes nothing under the root and lists exactly what a real run deletes")
    func dryRun() throws {
        let root = TempDir()
        for k in ["a", "b", "c"] { try make(k, "head -c 100000 /dev/urandom > $CARGO_TARGET_DIR/blob", root: root.path) }
        try FileManager.default.createDirectory(atPath: root.file("caches/docker-made/1/home"), withIntermediateDirectories: true)
        try sh("touch -d '30 days ago' \(root.file("caches/docker-made/1/home")) \(root.file("caches/docker-made/1"))")
        let started = root.file("started")
        let holder = start(Repo.silo, ["--root", root.path, "exec", "--key", "c", "--", "sh", "-c", "touch \(started); sleep 30"])
        try holder.run()
        defer { holder.terminate(); _ = holder.wait() }
        #expect(eventually { exists(started) && jobRecorded(root: root.path, key: "c") })

        let before = try treeDigest(root.path)
        let (dry, plan) = try reapJSON(["--max-age", "0", "--dry-run", "--keep", "b"], root: root.path)
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(try treeDigest(root.path) == before, "a dry run must not change anything under the root")
        #expect(actions(plan) == ["a/1": "would-delete", "b/1": "kept", "c/1": "kept"])
        let orphans = plan["orphans"] as? [[String: Any]] ?? []
        #expect(orphans.map { $0["action"] as? String } == ["would-delete"])

        let (real, done) = try reapJSON(["--max-age", "0", "--keep", "b"], root: root.path)
        #expect(real.status == 0, "\(real.stderr)")
        #expect(actions(done) == ["a/1": "deleted", "b/1": "kept", "c/1": "kept"])
        let reasons = (done["caches"] as? [[String: Any]] ?? []).map { "\($0["key"]!): \($0["reason"]!)" }
        #expect(reasons.contains { $0.hasPrefix("c: in use by pid") && $0.contains("sleep 30") }, "\(reasons)")
        #expect(reasons.contains { $0.hasPrefix("b: protected by --keep b") })
        #expect(!exists(root.file("caches/a")) && !exists(root.file("caches/docker-made")))
        #expect(exists(root.file("caches/c/1/target/blob")), "the leased cache is intact")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.file("trash")).isEmpty)
        let totals = done["totals"] as? [String: Any] ?? [:]
        #expect(totals["caches_deleted"] as? Int == 1)
        #expect((totals["bytes_freed"] as? Int ?? 0) >= 100_000)
        #expect((totals["files_deleted"] as? Int ?? 0) >= 4)
    }

    @Test("symlinks and hard links to files outside the root are removed as links; mounts inside a cache are left alone",
          .enabled(if: runningAsRoot, "needs root to mount"))
    func linksAndMounts() throws {
        let root = TempDir(), decoy = TempDir("silo-decoy"), mounted = TempDir("silo-mounted")
        try "precious\n".write(toFile: decoy.file("secret"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: decoy.file("dir/sub"), withIntermediateDirectories: true)
        try "also precious\n".write(toFile: decoy.file("dir/sub/file"), atomically: true, encoding: .utf8)
        try make("k", root: root.path)
        let home = root.file("caches/k/1/home"), target = root.file("caches/k/1/target")
        try sh("""
            ln -s \(decoy.file("secret")) \(home)/link-to-file && ln -s \(decoy.file("dir")) \(home)/registry/link-to-dir && \
            ln \(decoy.file("secret")) \(home)/hardlink && mkdir \(home)/registry/bound \(target)/tmpfs && \
            mount --bind \(decoy.file("dir")) \(home)/registry/bound && mount -t tmpfs -o size=1m silo-test \(target)/tmpfs && \
            echo inside > \(target)/tmpfs/file
            """)
        let decoyBefore = try treeDigest(decoy.path)
        let (r, report) = try reapJSON(["--max-age", "0"], root: root.path)
        // Wherever the walk went, the mounts moved along with the cache into the trash.
        let trashed = try FileManager.default.contentsOfDirectory(atPath: root.file("trash"))
        defer {
            for t in trashed { _ = try? run("/bin/umount", ["-l", root.file("trash/\(t)/home/registry/bound")]); _ = try? run("/bin/umount", ["-l", root.file("trash/\(t)/target/tmpfs")]) }
            _ = try? run("/bin/umount", ["-l", home + "/registry/bound"]); _ = try? run("/bin/umount", ["-l", target + "/tmpfs"])
        }
        #expect(r.status == 1, "mount points could not be deleted, so exit 1: \(r.stdout)")
        let skipped = (report["skipped_mounts"] as? [String] ?? []).map { $0.split(separator: "/").suffix(2).joined(separator: "/") }
        #expect(Set(skipped) == ["registry/bound", "target/tmpfs"], "\(report["skipped_mounts"] ?? "")")
        #expect(try treeDigest(decoy.path) == decoyBefore, "nothing outside the root changed")
        #expect(trashed.count == 1)
        let t = root.file("trash/" + (trashed.first ?? ""))
        #expect(readFile(t + "/target/tmpfs/file") == "inside\n", "the mounted filesystem is untouched")
        #expect(!exists(t + "/home/link-to-file") && !exists(t + "/home/hardlink"), "links are removed")
        #expect(!exists(root.file("caches/k")))

        // Once unmounted, the next reap finishes the trash.
        #expect(try run("/bin/umount", [t + "/home/registry/bound"]).status == 0)
        #expect(try run("/bin/umount", [t + "/target/tmpfs"]).status == 0)
        let (again, done) = try reapJSON([], root: root.path)
        #expect(again.status == 0, "\(again.stdout)")
        #expect((done["trash_finished"] as? [String] ?? []).count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.file("trash")).isEmpty)
        #expect(try treeDigest(decoy.path) == decoyBefore)
        _ = mounted
    }

    @Test("root-owned read-only directories a container left: reported by a non-root reap, deleted by a root reap",
          .enabled(if: runningAsRoot, "needs root to create root-owned files and to switch uid"))
    func rootOwnedLeftovers() throws {
        let parent = TempDir()
        let root = parent.file("root")
        try sh("mkdir \(root) && chown 1000:1000 \(root) && chmod 755 \(parent.path)")
        let made = try siloAs(uid: 1000, ["exec", "--key", "k", "--", "true"], root: root)
        #expect(made.status == 0, "\(made.stderr)")
        let src = root + "/caches/k/1/home/registry/src/reg/crate-1.0.0"
        try sh("mkdir -p \(src)/src && echo x > \(src)/src/lib.rs && echo '{\"v\":1}' > \(src)/.cargo-ok && chmod 0500 \(src)/src \(src) && chown -R 0:0 \(root)/caches/k/1/home/registry/src")

        let user = try siloAs(uid: 1000, ["reap", "--max-age", "0", "--json"], root: root)
        #expect(user.status == 1, "\(user.stdout)\(user.stderr)")
        let failures = try jsonObject(user.stdout)["failures"] as? [[String: Any]] ?? []
        #expect(!failures.isEmpty)
        #expect(failures.allSatisfy { ($0["error"] as? String ?? "").contains("os error 13") }, "\(failures)")
        // Its directory is root's and mode 0500: uid 1000 cannot even look inside.
        #expect(failures.map { ($0["path"] as? String ?? "").hasSuffix("/home/registry/src/reg/crate-1.0.0") } == [true], "\(failures)")
        #expect(actions(try jsonObject(user.stdout)) == ["k/1": "tombstoned"])
        #expect(user.stderr.contains("Permission denied"))
        #expect(!exists(root + "/caches/k/1"), "the cache was tombstoned all the same: no job can get it")

        let admin = try silo(["reap", "--json"], root: root)
        #expect(admin.status == 0, "\(admin.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/trash").isEmpty)
    }

    @Test("SIGKILL of a reap at random points: exec never sees a partial home, the next reap completes")
    func killedReaps() throws {
        let root = TempDir()
        let seed = UInt64(ProcessInfo.processInfo.environment["SILO_TEST_SEED"] ?? "") ?? 20261203
        var rng = SeededRandom(seed: seed)
        let files = 20_000
        let fill = "mkdir -p $CARGO_HOME/registry/src/r && cd $CARGO_HOME/registry/src/r && seq 1 \(files) | xargs -n 1000 touch && echo ok > $CARGO_HOME/complete"
        let check = "if [ -f $CARGO_HOME/complete ]; then ls $CARGO_HOME/registry/src/r | wc -l; elif [ -z \"$(ls -A $CARGO_HOME/registry)\" ]; then echo fresh; else echo partial; fi"
        // How long one whole reap of this tree takes here: the kills are spread over that span.
        try make("k", fill, root: root.path)
        let t0 = Date()
        #expect(try silo(["reap", "--max-age", "0"], root: root.path).status == 0)
        let span = max(0.02, Date().timeIntervalSince(t0) * 0.9)
        var killedMidway = 0
        for trial in 0..<12 {
            try make("k", fill, root: root.path)
            let delay = UInt32(Double(rng.next() % 1000) / 1000 * span * 1_000_000)
            let reap = start(Repo.silo, ["--root", root.path, "reap", "--max-age", "0"])
            try reap.run()
            usleep(delay)
            kill(reap.processIdentifier, SIGKILL)
            let status = reap.wait().status
            if status == 137 { killedMidway += 1 }
            let seen = try silo(["exec", "--key", "k", "--", "sh", "-c", check], root: root.path)
            #expect(seen.status == 0)
            let out = seen.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(out == "\(files)" || out == "fresh", "trial \(trial) (seed \(seed), delay \(delay) us): exec saw '\(out)'")
            let next = try silo(["reap", "--max-age", "0"], root: root.path)
            #expect(next.status == 0, "trial \(trial): \(next.stdout)\(next.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: root.file("trash")).isEmpty)
            #expect(!exists(root.file("caches/k")))
        }
        #expect(killedMidway >= 3, "most kills should land before the reap ends (\(killedMidway) did)")
    }

    @Test("--max-target-size deletes an oversized target dir whole, keeps its home, and never a leased one")
    func maxTargetSize() throws {
        let root = TempDir()
        try make("big", "head -c 3000000 /dev/urandom > $CARGO_TARGET_DIR/blob; echo keep > $CARGO_HOME/mine", root: root.path)
        try make("small", "head -c 1000 /dev/urandom > $CARGO_TARGET_DIR/blob", root: root.path)
        try make("busy", "head -c 3000000 /dev/urandom > $CARGO_TARGET_DIR/blob", root: root.path)
        let started = root.file("started")
        let holder = start(Repo.silo, ["--root", root.path, "exec", "--key", "busy", "--", "sh", "-c", "touch \(started); sleep 30"])
        try holder.run()
        defer { holder.terminate(); _ = holder.wait() }
        #expect(eventually { exists(started) })
        let (r, report) = try reapJSON(["--max-target-size", "1M"], root: root.path)
        #expect(r.status == 0, "\(r.stderr)")
        let targets = (report["targets"] as? [[String: Any]] ?? []).map { "\($0["key"]!):\($0["action"]!)" }.sorted()
        #expect(targets == ["big:deleted", "busy:kept: leased"])
        #expect(!exists(root.file("caches/big/1/target/blob")))
        #expect(exists(root.file("caches/big/1/target")), "an empty target dir is put back")
        #expect(readFile(root.file("caches/big/1/home/mine")) == "keep\n")
        #expect(exists(root.file("caches/small/1/target/blob")) && exists(root.file("caches/busy/1/target/blob")))
    }

    @Test("directories the store does not know are reported, collected once older than max-age; records without a directory are dropped")
    func orphansAndStaleRecords() throws {
        let root = TempDir()
        try make("gone", root: root.path)
        try make("live", root: root.path)
        try FileManager.default.removeItem(atPath: root.file("caches/gone"))
        // What `docker run -v <root>/caches/pr-9/1/home:/cargo-home` leaves when the source was missing.
        try FileManager.default.createDirectory(atPath: root.file("caches/pr-9/1/home"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root.file("caches/Bad Name"), withIntermediateDirectories: true)
        let (young, r1) = try reapJSON([], root: root.path)
        #expect(young.status == 0)
        #expect(r1["dropped_records"] as? [String] == ["gone/1"])
        let kept = (r1["orphans"] as? [[String: Any]] ?? []).map { "\($0["path"]!):\($0["action"]!)" }.sorted()
        #expect(kept == [root.file("caches/Bad Name") + ":kept", root.file("caches/pr-9/1") + ":kept"])
        #expect(young.stderr.contains("pr-9/1 is not a silo cache"))

        try sh("find '\(root.file("caches/pr-9"))' '\(root.file("caches/Bad Name"))' -exec touch -d '10 days ago' {} +")
        let (old, r2) = try reapJSON([], root: root.path)
        #expect(old.status == 0, "\(old.stdout)")
        let collected = (r2["orphans"] as? [[String: Any]] ?? []).map { "\($0["path"]!):\($0["action"]!)" }.sorted()
        #expect(collected == [root.file("caches/Bad Name") + ":deleted", root.file("caches/pr-9/1") + ":deleted"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.file("caches")) == ["live"])
        let ls = try silo(["ls", "--json"], root: root.path)
        #expect(ls.stdout.contains("\"live\"") && !ls.stdout.contains("\"gone\""))
    }

    @Test("a slot that is a symlink to a directory outside the root is removed as a link, never followed")
    func symlinkedSlot() throws {
        let root = TempDir(), decoy = TempDir("silo-decoy")
        try FileManager.default.createDirectory(atPath: decoy.file("home/registry"), withIntermediateDirectories: true)
        try "{}".write(toFile: decoy.file(".silo-cache"), atomically: true, encoding: .utf8)
        try "precious".write(toFile: decoy.file("home/registry/file"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: decoy.file("target"), withIntermediateDirectories: true)
        try make("k", root: root.path)
        try FileManager.default.createDirectory(atPath: root.file("caches/evil"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root.file("caches/evil/1"), withDestinationPath: decoy.path)
        try sh("touch -h -d '30 days ago' \(root.file("caches/evil/1"))")
        let before = try treeDigest(decoy.path)
        let (r, report) = try reapJSON(["--max-age", "7d", "--max-target-size", "0"], root: root.path)
        #expect(r.status == 0, "\(r.stdout)")
        let orphans = (report["orphans"] as? [[String: Any]] ?? []).map { "\($0["path"]!):\($0["action"]!)" }
        #expect(orphans == [root.file("caches/evil/1") + ":deleted"])
        #expect(try treeDigest(decoy.path) == before, "the link's target is untouched")
        #expect(!exists(root.file("caches/evil")))
    }

    @Test("bad flag values are usage errors that name the value; nothing is touched")
    func badFlags() throws {
        let root = TempDir()
        try make("k", root: root.path)
        let before = try treeDigest(root.path)
        for (flag, value) in [("--max-age", "7 days"), ("--max-size", "lots"), ("--min-free", "150%"), ("--keep", "a/b"), ("--max-src-age", "-1d"), ("--max-target-size", "1X")] {
            let r = try silo(["reap", flag, value], root: root.path)
            #expect(r.status == 2)
            #expect(r.stderr.contains("\(flag) '\(value)'"), "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1)
        }
        #expect(try treeDigest(root.path) == before)
    }
}
