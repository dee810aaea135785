// `silo verify` on registries a real cargo populated: for each kind of damage, real cargo fails
// (its message is asserted), verify names exactly that kind, and after `--heal` a real
// `cargo build --offline` succeeds with no manual clean.

import Foundation
import Testing
@testable import SiloCore
import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

@Suite("verify", .serialized)
final class VerifyTests {
    let registry: FixtureRegistry
    let scratch = TempDir("silo-verify")
    /// A CARGO_HOME and target dir after one good `cargo build` of the example workspace.
    let goldenHome: String
    let goldenTarget: String
    let workspace: String
    let reg: String

    init() throws {
        registry = try FixtureRegistry()
        workspace = try copyWorkspace(into: scratch)
        goldenHome = scratch.file("golden-home")
        goldenTarget = scratch.file("golden-target")
        try FileManager.default.createDirectory(atPath: goldenHome, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: registry.configPath, toPath: goldenHome + "/config.toml")
        let built = try run("/bin/sh", ["-c", "cargo build 2>&1"], environment: Self.cargoEnv(home: goldenHome, target: goldenTarget), cwd: workspace)
        guard built.status == 0 else { throw TestFailure("golden build failed: \(built.stdout)") }
        reg = try FileManager.default.contentsOfDirectory(atPath: goldenHome + "/registry/src").first { !$0.hasPrefix(".") } ?? ""
    }

    static func cargoEnv(home: String, target: String) -> [String: String] {
        var env = baseEnvironment()
        env["CARGO_HOME"] = home
        env["CARGO_TARGET_DIR"] = target
        return env
    }

    /// A fresh copy of the golden home and target.
    struct Copy {
        let home: String
        let target: String
        var src: String
    }

    var trial = 0
    func fresh() throws -> Copy {
        trial += 1
        let home = scratch.file("home\(trial)"), target = scratch.file("target\(trial)")
        for (from, to) in [(goldenHome, home), (goldenTarget, target)] {
            let r = try run("/bin/cp", ["-a", from, to])
            guard r.status == 0 else { throw TestFailure("cp: \(r.stderr)") }
        }
        return Copy(home: home, target: target, src: home + "/registry/src/" + reg)
    }

    func cargo(_ c: Copy, _ args: String, asUID uid: Int? = nil) throws -> RunResult {
        let command = "cargo \(args) 2>&1"
        if let uid {
            // As a container would: the toolchain mounted where the runner uid can reach it (it lives
            // under /root here), cargo run as that uid.
            var env = Self.cargoEnv(home: c.home, target: c.target)
            env["HOME"] = "/tmp"
            let sysroot = try run("/bin/sh", ["-c", "rustc --print sysroot"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let mountPoint = scratch.file("toolchain")
            try? FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
            env["PATH"] = mountPoint + "/bin:/usr/bin:/bin"
            let script = "mount --bind \"$1\" \"$2\" && exec setpriv --reuid \(uid) --regid \(uid) --clear-groups /bin/sh -c '\(command)'"
            return try run("/usr/bin/unshare", ["--mount", "/bin/sh", "-c", script, "sh", sysroot, mountPoint], environment: env, cwd: workspace)
        }
        return try run("/bin/sh", ["-c", command], environment: Self.cargoEnv(home: c.home, target: c.target), cwd: workspace)
    }

    func verify(_ c: Copy, _ extra: [String] = []) throws -> (RunResult, [[String: Any]]) {
        let r = try run(Repo.silo, ["verify", "--cargo-home", c.home, "--target-dir", c.target, "--json"] + extra)
        let problems = try jsonObject(r.stdout)["problems"] as? [[String: Any]] ?? []
        return (r, problems)
    }

    func kinds(_ problems: [[String: Any]], severities: Set<String> = ["error", "warning"]) -> Set<String> {
        Set(problems.filter { severities.contains($0["severity"] as? String ?? "") }.compactMap { $0["kind"] as? String })
    }

    /// The whole cycle for one kind of damage.
    func cycle(_ c: Copy, cargoFails expected: String, kinds expectedKinds: Set<String>, asUID uid: Int? = nil,
               verifyArgs: [String] = [], healArgs: [String] = [], buildAfter: String = "build --offline --locked",
               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let broken = try cargo(c, "build --offline --locked", asUID: uid)
        #expect(broken.status != 0, "cargo should fail on this damage", sourceLocation: sourceLocation)
        #expect(broken.stdout.contains(expected), "cargo's message: \(broken.stdout.suffix(3000))", sourceLocation: sourceLocation)

        let (found, problems) = try verify(c, verifyArgs)
        #expect(found.status == 1, "\(found.stderr)", sourceLocation: sourceLocation)
        #expect(kinds(problems) == expectedKinds, "\(problems.map { "\($0["kind"]!) \($0["path"]!)" })", sourceLocation: sourceLocation)

        let healed = try run(Repo.silo, ["verify", "--cargo-home", c.home, "--target-dir", c.target, "--heal"] + verifyArgs + healArgs)
        #expect(healed.status == 0, "\(healed.stdout)\(healed.stderr)", sourceLocation: sourceLocation)
        let after = try cargo(c, buildAfter, asUID: uid)
        #expect(after.status == 0, "after heal: \(after.stdout.suffix(1500))", sourceLocation: sourceLocation)
        let (clean, left) = try verify(c, verifyArgs)
        #expect(clean.status == 0 && kinds(left).isEmpty, "\(left)", sourceLocation: sourceLocation)
    }

    @Test("a healthy home verifies clean, fast and deep")
    func healthy() throws {
        let c = try fresh()
        for extra in [[], ["--deep"]] {
            let (r, problems) = try verify(c, extra)
            #expect(r.status == 0, "\(problems)")
            #expect(problems.isEmpty)
        }
        let text = try run(Repo.silo, ["verify", "--cargo-home", c.home])
        #expect(text.stdout.hasPrefix("silo verify: \(c.home): 9 crates, 9 archives, healthy"), "\(text.stdout)")
    }

    @Test("a crate whose src/ is gone while .cargo-ok and Cargo.toml remain")
    func srcGone() throws {
        let c = try fresh()
        try FileManager.default.removeItem(atPath: c.src + "/memchr-2.5.0/src")
        try cycle(c, cargoFails: "can't find library `memchr`, rename file to `src/lib.rs` or specify lib.path", kinds: ["file-missing", "stale-build-output"])
    }

    @Test("one deleted nested module file")
    func nestedModule() throws {
        let c = try fresh()
        try FileManager.default.removeItem(atPath: c.src + "/memchr-2.5.0/src/memchr/x86/sse2.rs")
        try cycle(c, cargoFails: "sse2.rs", kinds: ["file-missing", "stale-build-output"])
    }

    @Test("a truncated source file, mtime kept")
    func truncatedSource() throws {
        let c = try fresh()
        let file = c.src + "/log-0.4.17/src/lib.rs"
        let size = Int64(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int ?? 0)
        #expect(truncate(file, off_t(size / 2)) == 0)
        // Keep the archive's mtime, as a partial write that restores times would; and drop the
        // fingerprints, as a fresh job with this home would have none.
        try sh("touch -d @1153704088 \(file) && rm -rf \(c.target)")
        try cycle(c, cargoFails: "error", kinds: ["file-size-mismatch", "stale-build-output"])
    }

    @Test("Cargo.toml missing from a crate dir")
    func manifestMissing() throws {
        let c = try fresh()
        try FileManager.default.removeItem(atPath: c.src + "/fnv-1.0.7/Cargo.toml")
        try cycle(c, cargoFails: "fnv-1.0.7/Cargo.toml", kinds: ["file-missing", "stale-build-output"])
    }

    @Test("a crate dir owned by another uid with 0640 files, checked for uid 1000", .enabled(if: runningAsRoot))
    func foreignOwner() throws {
        let c = try fresh()
        let dir = c.src + "/itoa-1.0.1"
        try sh("chown -R 1000:1000 \(c.home) \(c.target) \(scratch.path)/workspace && chmod 755 \(scratch.path) && chown -R 1001:1001 \(dir) && find \(dir) -type f -exec chmod 0640 {} + && find \(dir) -type d -exec chmod 0750 {} + && rm -rf \(c.target)/debug/.fingerprint/itoa-*")
        defer { _ = try? sh("chown -R 0:0 \(scratch.path)/workspace") }
        try cycle(c, cargoFails: "Permission denied (os error 13)", kinds: ["foreign-owner", "unreadable"], asUID: 1000, verifyArgs: ["--uid", "1000", "--gid", "1000"])
        var st = stat()
        #expect(lstat(dir, &st) == 0 && st.st_uid == 1000)
    }

    @Test("a truncated .crate next to intact sources: cargo trusts it until it must unpack")
    func truncatedCrate() throws {
        let c = try fresh()
        let crate = c.home + "/registry/cache/\(reg)/smallvec-1.9.0.crate"
        #expect(truncate(crate, 200) == 0)
        #expect(try cargo(c, "build --offline --locked").status == 0, "with the sources intact cargo never looks at the .crate")
        let (found, problems) = try verify(c)
        #expect(found.status == 1)
        #expect(kinds(problems) == ["crate-unreadable-archive"])
        // The day its sources go (a sweeper, a reap of old sources), cargo fails on it.
        try FileManager.default.removeItem(atPath: c.src + "/smallvec-1.9.0")
        let broken = try cargo(c, "build --offline --locked")
        #expect(broken.status != 0)
        #expect(broken.stdout.contains("smallvec"), "\(broken.stdout.suffix(1000))")
        let healed = try run(Repo.silo, ["verify", "--cargo-home", c.home, "--target-dir", c.target, "--heal"])
        #expect(healed.stdout.contains("needs the network") || healed.stderr.contains("needs the network"))
        #expect(!exists(crate), "the bad .crate is gone, so cargo downloads it again")
        let online = try cargo(c, "build --locked")
        #expect(online.status == 0, "\(online.stdout.suffix(1000))")
        #expect(try verify(c).0.status == 0)
    }

    @Test("an interrupted extraction: files but no .cargo-ok")
    func interruptedExtraction() throws {
        let c = try fresh()
        let dir = c.src + "/cfg-if-1.0.0"
        try FileManager.default.removeItem(atPath: dir + "/.cargo-ok")
        try FileManager.default.removeItem(atPath: dir + "/src/lib.rs")
        try "leftover\n".write(toFile: dir + "/stray.txt", atomically: true, encoding: .utf8)
        let (found, problems) = try verify(c)
        #expect(found.status == 1)
        #expect(kinds(problems) == ["marker-missing", "stale-build-output"])
        let healed = try run(Repo.silo, ["verify", "--cargo-home", c.home, "--target-dir", c.target, "--heal"])
        #expect(healed.status == 0, "\(healed.stdout)")
        #expect(!exists(dir + "/stray.txt"), "the leftover went with the dir")
        let after = try cargo(c, "build --offline --locked")
        #expect(after.status == 0, "\(after.stdout.suffix(1000))")
        #expect(readFile(dir + "/.cargo-ok") == "{\"v\":1}")
    }

    @Test("a marker that is not {\"v\":1} is reported as info: cargo re-extracts it itself")
    func markerInvalid() throws {
        let c = try fresh()
        try "ok".write(toFile: c.src + "/fnv-1.0.7/.cargo-ok", atomically: true, encoding: .utf8)
        let (r, problems) = try verify(c)
        #expect(r.status == 0, "info only: \(problems)")
        #expect(kinds(problems, severities: ["info"]) == ["marker-invalid"])
        #expect(try cargo(c, "build --offline --locked").status == 0)
    }

    @Test("a .crate whose sha256 differs from the index cksum, and a garbled index cache entry")
    func checksumAndIndex() throws {
        let c = try fresh()
        let crate = c.home + "/registry/cache/\(reg)/itoa-1.0.1.crate"
        // The same tar, compressed again: every file matches, but the bytes are not what the index says.
        try sh("gzip -dc \(crate) | gzip -1 -n > \(crate).new && mv \(crate).new \(crate)")
        let entry = c.home + "/registry/index/\(reg)/.cache/3/f/fnv"
        try Data([3, 2, 0, 0, 0] + Array("garbage".utf8)).write(to: URL(fileURLWithPath: entry))
        let (r, problems) = try verify(c)
        #expect(r.status == 1)
        #expect(kinds(problems) == ["crate-checksum-mismatch", "index-cache-corrupt"], "\(problems)")
        let broken = try cargo(c, "generate-lockfile --offline")
        #expect(broken.status != 0, "cargo cannot resolve fnv offline from a garbled cache entry: \(broken.stdout)")
        let healed = try run(Repo.silo, ["verify", "--cargo-home", c.home, "--target-dir", c.target, "--heal"])
        #expect(healed.status == 1, "both remedies need the network, so a crate-missing warning stays: \(healed.stdout)")
        #expect(!exists(crate) && !exists(entry))
        let online = try cargo(c, "build --locked")
        #expect(online.status == 0, "\(online.stdout.suffix(1000))")
        #expect(try verify(c).0.status == 0)
    }

    @Test("dangling bin links and orphaned registries")
    func binLinksAndOrphans() throws {
        let c = try fresh()
        try FileManager.default.createDirectory(atPath: c.home + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: c.home + "/bin/cargo-fmt", withDestinationPath: "/nonexistent/rustup")
        try FileManager.default.createSymbolicLink(atPath: c.home + "/bin/sh", withDestinationPath: "/bin/sh")
        for part in ["cache", "src"] {
            try FileManager.default.createDirectory(atPath: c.home + "/registry/\(part)/index.crates.io-6f17d22bba15001f/old-1.0.0", withIntermediateDirectories: true)
        }
        let (r, problems) = try verify(c)
        #expect(r.status == 1)
        #expect(kinds(problems) == ["dangling-bin-link", "orphan-registry"])
        #expect(problems.filter { $0["kind"] as? String == "orphan-registry" }.count == 2)
        #expect(try run(Repo.silo, ["verify", "--cargo-home", c.home, "--heal"]).status == 0)
        #expect(!exists(c.home + "/bin/cargo-fmt") && exists(c.home + "/bin/sh"))
        #expect(!exists(c.home + "/registry/src/index.crates.io-6f17d22bba15001f"))
        #expect(try cargo(c, "build --offline --locked").status == 0)
    }

    @Test("--deep finds a file whose content changed but not its size")
    func deepContent() throws {
        let c = try fresh()
        let file = c.src + "/log-0.4.17/src/macros.rs"
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: file)))
        bytes[bytes.count / 2] ^= 0x20
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        #expect(try verify(c).0.status == 0, "fast mode reads no content")
        let (r, problems) = try verify(c, ["--deep"])
        #expect(r.status == 1)
        #expect(kinds(problems) == ["file-content-mismatch", "stale-build-output"], "\(problems)")
        #expect(try run(Repo.silo, ["verify", "--cargo-home", c.home, "--target-dir", c.target, "--deep", "--heal"]).status == 0)
        #expect(try cargo(c, "build --offline --locked").status == 0)
    }

    @Test("a build script that picked its cfg from a missing file (rustix): healed with no manual cargo clean")
    func buildScriptTrap() throws {
        let c = try fresh()
        try FileManager.default.removeItem(atPath: c.src + "/probe-0.1.0/src/linux_raw.rs")
        // A new job's empty target dir with the damaged shared home: the build script runs, sees the
        // file missing and picks the libc backend that probe cannot build.
        try FileManager.default.removeItem(atPath: c.target)
        let broken = try cargo(c, "build --offline --locked")
        #expect(broken.status != 0)
        #expect(broken.stdout.contains("error[E0432]: unresolved import `libc`"), "\(broken.stdout.suffix(1500))")
        let (found, problems) = try verify(c)
        #expect(found.status == 1)
        #expect(kinds(problems) == ["file-missing", "stale-build-output"], "\(problems)")

        // Healing the home alone restores the file, but cargo trusts the build script's cached answer.
        let homeOnly = try run(Repo.silo, ["verify", "--cargo-home", c.home, "--heal"])
        #expect(homeOnly.status == 0, "\(homeOnly.stdout)")
        #expect(!exists(c.src + "/probe-0.1.0"), "the damaged dir is gone; cargo re-extracts it on the next build")
        let stillBroken = try cargo(c, "build --offline --locked")
        #expect(stillBroken.stdout.contains("error[E0432]: unresolved import `libc`"), "the wrong answer stays cached in target/: \(stillBroken.stdout.suffix(800))")
        #expect(exists(c.src + "/probe-0.1.0/src/linux_raw.rs"), "cargo re-extracted the file, yet the build fails")

        // The heal was recorded in the home, so verify with the target dir finds what it left behind.
        let (later, leftovers) = try verify(c)
        #expect(later.status == 1)
        #expect(kinds(leftovers) == ["stale-build-output"], "\(leftovers)")
        let healed = try run(Repo.silo, ["verify", "--cargo-home", c.home, "--target-dir", c.target, "--heal"])
        #expect(healed.status == 0, "\(healed.stdout)")
        let fixed = try cargo(c, "build --offline --locked")
        #expect(fixed.status == 0, "\(fixed.stdout.suffix(1500))")
        let app = try run(c.target + "/debug/app", [])
        #expect(app.stdout.contains("backend=linux_raw"), "\(app.stdout)")
        #expect(try verify(c).0.status == 0)
    }

    @Test("--key verifies and heals a silo cache, home and target together, under the key's lease")
    func keyedCache() throws {
        let root = TempDir()
        let built = try silo(["exec", "--key", "pr-7", "--cargo-config", registry.configPath, "--", "cargo", "build"], root: root.path, cwd: workspace)
        #expect(built.status == 0, "\(built.stderr)")
        let slot = root.file("caches/pr-7/1")
        let src = try FileManager.default.contentsOfDirectory(atPath: slot + "/home/registry/src").first { !$0.hasPrefix(".") }!
        try FileManager.default.removeItem(atPath: slot + "/home/registry/src/\(src)/probe-0.1.0/src/linux_raw.rs")
        let found = try silo(["verify", "--key", "pr-7", "--json"], root: root.path)
        #expect(found.status == 1)
        #expect(kinds(try jsonObject(found.stdout)["problems"] as? [[String: Any]] ?? []) == ["file-missing", "stale-build-output"])
        let healed = try silo(["verify", "--key", "pr-7", "--heal"], root: root.path)
        #expect(healed.status == 0, "\(healed.stdout)\(healed.stderr)")
        registry.stop()
        defer { try? registry.start() }
        let after = try silo(["exec", "--key", "pr-7", "--cargo-config", registry.configPath, "--", "sh", "-c", "cargo build --offline --locked 2>&1 && $CARGO_TARGET_DIR/debug/app"], root: root.path, cwd: workspace)
        #expect(after.status == 0, "\(after.stdout)")
        #expect(after.stdout.contains("backend=linux_raw"))
        let missing = try silo(["verify", "--key", "nope"], root: root.path)
        #expect(missing.status == 1 && missing.stderr.contains("key 'nope' slot 1 has no cache"))
    }

    @Test("a symlink inside the home or the target dir is never followed, by the check or by heal")
    func symlinksNotFollowed() throws {
        let c = try fresh()
        let decoy = TempDir("silo-decoy")
        try FileManager.default.createDirectory(atPath: decoy.file("debug/.fingerprint/memchr-0123456789abcdef"), withIntermediateDirectories: true)
        try "x".write(toFile: decoy.file("debug/.fingerprint/memchr-0123456789abcdef/f"), atomically: true, encoding: .utf8)
        let before = try treeDigest(decoy.path)
        // The target's fingerprint dir is a link to the decoy's, which has a memchr entry to lose.
        try FileManager.default.removeItem(atPath: c.target + "/debug/.fingerprint")
        try FileManager.default.createSymbolicLink(atPath: c.target + "/debug/.fingerprint", withDestinationPath: decoy.file("debug/.fingerprint"))
        try FileManager.default.removeItem(atPath: c.src + "/memchr-2.5.0/src/lib.rs")
        let healed = try run(Repo.silo, ["verify", "--cargo-home", c.home, "--target-dir", c.target, "--heal"])
        #expect(healed.status == 0, "\(healed.stdout)\(healed.stderr)")
        #expect(try treeDigest(decoy.path) == before, "nothing behind the link changed")
        try FileManager.default.createSymbolicLink(atPath: c.home + "/bin", withDestinationPath: decoy.path)
        let refused = try run(Repo.silo, ["verify", "--cargo-home", c.home, "--heal"])
        #expect(refused.status == 1 && refused.stderr.contains("bin is a symlink"), "\(refused.stderr)")
        #expect(try treeDigest(decoy.path) == before)
    }

    @Test("bad input: a home that is no directory, a bad uid, --key with --cargo-home")
    func badInput() throws {
        let r1 = try run(Repo.silo, ["verify", "--cargo-home", "/nonexistent/home"])
        #expect(r1.status == 1 && r1.stderr.contains("'/nonexistent/home' is not a directory"))
        let r2 = try run(Repo.silo, ["verify", "--uid", "alice"])
        #expect(r2.status == 2 && r2.stderr.contains("--uid 'alice'"))
        let r3 = try run(Repo.silo, ["verify", "--key", "a", "--cargo-home", "/x"])
        #expect(r3.status == 2)
    }
}
