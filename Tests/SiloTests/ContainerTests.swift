// Containers, emulated the way docker makes them: a private mount namespace (unshare --mount), the
// cache bind-mounted at the paths `silo mount` printed, and the process run as uid 0 or as the
// runner's uid (setpriv). Real cargo runs inside. The story a fleet lives through: a container as
// root leaves root's files in the cache, the next job as the runner fails, `silo diagnose` names it,
// `silo fix-owner` repairs it; and with the --user that `silo mount` prints it never happens.

import Foundation
import Testing
@testable import SiloCore
import SiloSystem

@Suite("containers", .serialized, .enabled(if: runningAsRoot, "needs root for mount namespaces and other uids"))
final class ContainerTests {
    let registry: FixtureRegistry
    let scratch = TempDir("silo-ctr")
    let root: String
    let workspace: String

    init() throws {
        registry = try FixtureRegistry()
        try sh("chmod 755 \(scratch.path)")
        root = scratch.file("root")
        workspace = try copyWorkspace(into: scratch)
        try sh("chmod -R a+rwX \(workspace)")
    }

    /// `docker run $(silo mount ...) IMAGE sh -c COMMAND`: the mounts are made at the container paths
    /// (under the scratch dir, standing for /cargo-home and /cargo-target), the toolchain is visible,
    /// and the command runs as `uid`.
    func container(_ mount: [String: Any], uid: Int, _ command: String) throws -> RunResult {
        let args = try #require(mount["docker_args"] as? [String])
        var script = "set -e; mount --bind \"$TOOLCHAIN_SRC\" \(scratch.file("toolchain")); "
        var env = baseEnvironment()
        var i = 0
        while i < args.count {
            if args[i] == "-v" {
                let parts = args[i + 1].split(separator: ":").map(String.init)
                try FileManager.default.createDirectory(atPath: parts[1], withIntermediateDirectories: true)
                script += "mount --bind \(parts[0]) \(parts[1]); "
            } else if args[i] == "-e" {
                let kv = args[i + 1].split(separator: "=", maxSplits: 1).map(String.init)
                env[kv[0]] = kv[1]
            }
            i += 2
        }
        try FileManager.default.createDirectory(atPath: scratch.file("toolchain"), withIntermediateDirectories: true)
        env["TOOLCHAIN_SRC"] = rustSysroot
        env["PATH"] = scratch.file("toolchain") + "/bin:/usr/bin:/bin"
        env["HOME"] = "/tmp"
        script += "exec setpriv --reuid \(uid) --regid \(uid) --clear-groups /bin/sh -c '\(command)'"
        return try run("/usr/bin/unshare", ["--mount", "/bin/sh", "-c", script], environment: env, cwd: workspace)
    }

    func mount(_ key: String, _ extra: [String] = []) throws -> [String: Any] {
        let r = try silo(["mount", "--key", key, "--format", "json", "--cargo-config", registry.configPath,
                          "--home-at", scratch.file("ctr-\(key)/cargo-home"), "--target-at", scratch.file("ctr-\(key)/cargo-target")] + extra, root: root)
        guard r.status == 0 else { throw TestFailure("mount: \(r.stderr)") }
        return try jsonObject(r.stdout)
    }

    @Test("a root container's files break the runner's next job; diagnose names it; fix-owner repairs it")
    func rootContainerThenRunner() throws {
        let m = try mount("pr-60", ["--user", "1000:1000", "--holder", "ctr-60", "--ttl", "1h"])
        // The container is started as root, ignoring the --user that mount printed.
        let asRoot = try container(m, uid: 0, "cargo build 2>&1")
        #expect(asRoot.status == 0, "\(asRoot.stdout)")
        let home = try #require(m["home"] as? String)
        #expect(try FileSystem.status(home + "/registry/src")?.uid == 0, "root's files are left in the cache")

        let runner = try container(m, uid: 1000, "cargo build 2>&1")
        #expect(runner.status != 0, "the runner's job fails on root's files")
        let log = scratch.file("failed.log")
        try runner.stdout.write(toFile: log, atomically: true, encoding: .utf8)
        let unnamed = try jsonObject(try run(Repo.silo, ["diagnose", "--json", log]).stdout)
        #expect(unnamed["fix"] as? String == "sudo silo fix-owner --key <key> --uid $(id -u) --gid $(id -g)", "a container's paths do not name the key")
        let d = try run(Repo.silo, ["diagnose", "--json", "--uid", "1000", "--key", "pr-60", log])
        #expect(d.status == 1, "\(runner.stdout)")
        let diagnosis = try jsonObject(d.stdout)
        #expect(diagnosis["class"] as? String == "foreign-ownership", "\(runner.stdout)")
        #expect(diagnosis["fix"] as? String == "sudo silo fix-owner --key pr-60 --uid 1000 --gid 1000")

        // The fix, as diagnose printed it (without sudo: the test is root). The lease is the job's.
        #expect(try silo(["lease", "release", "--holder", "ctr-60"], root: root).status == 0)
        let fixed = try silo(["fix-owner", "--key", "pr-60", "--uid", "1000", "--gid", "1000", "--json"], root: root)
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect((try jsonObject(fixed.stdout)["changed"] as? Int ?? 0) > 100)
        let after = try container(m, uid: 1000, "cargo build 2>&1 && touch $CARGO_TARGET_DIR/runner-was-here")
        #expect(after.status == 0, "\(after.stdout)")
        let stray = try run("/usr/bin/find", [home, root + "/caches/pr-60/1/target", "!", "-uid", "1000"]).stdout
        #expect(stray.isEmpty, "every entry is the runner's: \(stray)")
    }

    @Test("with the --user mount prints, the container's files are the runner's from the start")
    func containerAsRunner() throws {
        let m = try mount("pr-61", ["--user", "1000:1000"])
        #expect((m["docker_args"] as? [String] ?? []).suffix(2) == ["--user", "1000:1000"])
        let built = try container(m, uid: 1000, "cargo build 2>&1")
        #expect(built.status == 0, "\(built.stdout)")
        let stray = try run("/usr/bin/find", [m["home"] as! String, m["target"] as! String, "!", "-uid", "1000"]).stdout
        #expect(stray.isEmpty, "nothing is root's: \(stray)")
        let next = try container(m, uid: 1000, "cargo build --offline 2>&1")
        #expect(next.status == 0, "\(next.stdout)")
    }

    @Test("fix-owner never follows a symlink, never leaves the cache, never crosses a mount, and leaves shared base inodes alone")
    func fixOwnerBoundaries() throws {
        let decoy = TempDir("silo-decoy"), other = TempDir("silo-other-fs")
        try "mine\n".write(toFile: decoy.file("secret"), atomically: true, encoding: .utf8)
        try sh("chown 0:0 \(decoy.file("secret"))")
        let m = try mount("pr-62", ["--user", "1000:1000"])
        let home = m["home"] as! String
        try sh("""
            mkdir -p \(home)/registry/mnt && mount -t tmpfs -o size=1m silo-test \(home)/registry/mnt && touch \(home)/registry/mnt/inside && \
            ln -s \(decoy.file("secret")) \(home)/link && ln \(decoy.file("secret")) \(home)/hard 2>/dev/null || true; \
            echo x > \(home)/rootfile && chown 0:0 \(home)/rootfile && mkdir -p \(other.path)/d
            """)
        defer { _ = try? run("/bin/umount", ["-l", home + "/registry/mnt"]) }
        let r = try silo(["fix-owner", "--key", "pr-62", "--uid", "1000", "--gid", "1000", "--json"], root: root)
        #expect(r.status == 0, "\(r.stderr)")
        let report = try jsonObject(r.stdout)
        #expect((report["skipped_mounts"] as? [String] ?? []).contains { $0.hasSuffix("registry/mnt") })
        #expect(try FileSystem.status(home + "/rootfile")?.uid == 1000)
        #expect(try FileSystem.status(home + "/link")?.uid == 1000, "the link itself is changed")
        #expect(try FileSystem.status(decoy.file("secret"))?.uid == 0, "what it points at is not")
        #expect(try FileSystem.status(home + "/registry/mnt/inside")?.uid == 0, "another mount is not entered")
        let bad = try silo(["fix-owner", "--key", "pr-nope", "--uid", "1000"], root: root)
        #expect(bad.status == 2 && bad.stderr.contains("key 'pr-nope' has no cache"), "\(bad.stderr)")
    }
}
