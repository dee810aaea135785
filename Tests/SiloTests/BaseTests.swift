// Bases and seeding with real cargo, real uids and real filesystems: ext4 (hard links and copies)
// and a loop-mounted XFS with reflink=1 (reflinks). The isolation guarantee is the point: whatever
// a job does inside its own cache, the base and every other cache stay byte for byte the same.

import Foundation
import Testing
@testable import SiloCore
import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

/// What a hostile (or just careless) job does to its own CARGO_HOME: every write, truncation,
/// chmod, deletion and rename it can think of, then cargo's own mutating commands. Each step may
/// fail (a linked base file is read-only and not the job's); none may reach another cache.
let vandalism = """
    h=$CARGO_HOME
    for f in $(find $h/registry/src -type f | head -40) $(find $h/registry/cache -type f | head -5); do
        chmod u+w "$f" 2>/dev/null
        echo vandal >> "$f" 2>/dev/null
        dd if=/dev/zero of="$f" bs=1 count=3 conv=notrunc 2>/dev/null
        truncate -s 1 "$f" 2>/dev/null
    done
    for f in $(find $h/registry/index -type f | head -20) $h/.global-cache; do echo vandal >> "$f"; done
    rm -f $(find $h/registry/src -name Cargo.toml | head -3)
    mv $(find $h/registry/src -name '*.md' | head -1) $h/renamed.md 2>/dev/null
    rm -rf $(ls -d $h/registry/src/*/cfg-if-* | head -1)
    ln -s /etc/passwd $h/registry/src/evil-link
    cargo update --offline >/dev/null 2>&1
    cargo fetch --offline >/dev/null 2>&1
    cargo clean >/dev/null 2>&1
    true
    """

@Suite("bases and seeding", .serialized)
final class BaseTests {
    let registry: FixtureRegistry
    let scratch = TempDir("silo-bases")

    init() throws {
        registry = try FixtureRegistry()
        try sh("chmod 755 \(scratch.path)")
    }

    /// A workspace copy every uid may write (cargo writes Cargo.lock into it).
    func workspace(_ name: String) throws -> String {
        let w = try copyWorkspace(into: scratch, named: name)
        try sh("chmod -R a+rwX \(w)")
        return w
    }

    /// A root every uid may traverse, as /var/lib/silo is.
    func makeRoot(in parent: String? = nil) throws -> String {
        let path = (parent ?? scratch.path) + "/root-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try sh("chmod 755 \(path)")
        return path
    }

    /// Builds key main (cold, from the registry) and promotes it to the base `default`.
    func promoteMain(root: String, workspace: String) throws {
        let built = try silo(["exec", "--key", "main", "--cargo-config", registry.configPath, "--", "sh", "-c", "cargo build 2>&1"], root: root, cwd: workspace)
        #expect(built.status == 0, "\(built.stdout)\(built.stderr)")
        let promoted = try silo(["promote", "--key", "main", "--json"], root: root)
        #expect(promoted.status == 0, "\(promoted.stderr)")
    }

    func baseHome(_ root: String, generation: Int = 1) -> String { root + "/bases/default/\(generation)/home" }

    func linkCount(_ path: String) -> UInt64 { (try? FileSystem.status(path))??.links ?? 0 }

    func firstFile(under dir: String, named suffix: String) throws -> String {
        let found = try run("/bin/sh", ["-c", "find \(dir) -type f -name '\(suffix)' | sort | head -1"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !found.isEmpty else { throw TestFailure("no \(suffix) under \(dir)") }
        return found
    }

    @Test("ext4: a key seeded by hard links for a runner uid builds offline, and nothing it does reaches the base or another cache",
          .enabled(if: runningAsRoot, "needs root to seed for another uid and to mount the toolchain"))
    func hardLinkIsolation() throws {
        let root = try makeRoot()
        try promoteMain(root: root, workspace: try workspace("ws-main"))
        registry.stop()
        defer { try? registry.start() }

        // Two PR keys seeded for uid 1000; the first builds offline right away.
        let w1 = try workspace("ws-pr1"), w2 = try workspace("ws-pr2")
        try sh("cp \(scratch.file("ws-main"))/Cargo.lock \(w1)/ && cp \(scratch.file("ws-main"))/Cargo.lock \(w2)/ && chmod a+rw \(w1)/Cargo.lock \(w2)/Cargo.lock")
        let built = try siloWithToolchain(["exec", "--key", "pr-1", "--user", "1000", "--cargo-config", registry.configPath, "--",
                                           "sh", "-c", "id -u; cargo build --offline --locked 2>&1 && $CARGO_TARGET_DIR/debug/app"], root: root, cwd: w1, scratch: scratch)
        #expect(built.status == 0, "\(built.stdout)\(built.stderr)")
        #expect(built.stdout.hasPrefix("1000\n"), "the job ran as the runner uid: \(built.stdout)")
        #expect(built.stdout.contains("words="))
        #expect(built.stderr.contains("from base default/1 by hardlink"), "\(built.stderr)")
        #expect(registry.requests().filter { $0.contains(".crate ") }.count > 0, "main downloaded")
        let requestsAfterSeed = registry.requests()

        let seeded = try siloWithToolchain(["exec", "--key", "pr-2", "--user", "1000", "--", "true"], root: root, cwd: w2, scratch: scratch)
        #expect(seeded.status == 0, "\(seeded.stderr)")
        let pr2Home = root + "/caches/pr-2/1/home"
        let sharedSource = try firstFile(under: pr2Home + "/registry/src", named: "lib.rs")
        #expect(linkCount(sharedSource) >= 3, "base, pr-1 and pr-2 share the source's inode")
        let st = try #require(try FileSystem.status(sharedSource))
        #expect(st.uid == 0 && st.permissions & 0o222 == 0, "a shared inode is root's and read-only")
        #expect((try FileSystem.status(pr2Home + "/registry"))?.uid == 1000, "the cache's directories are the runner's")

        let baseBefore = try treeDigest(baseHome(root))
        let pr2Before = try treeDigest(pr2Home)
        let vandal = try siloWithToolchain(["exec", "--key", "pr-1", "--user", "1000", "--", "sh", "-c", vandalism], root: root, cwd: w1, scratch: scratch)
        #expect(vandal.status == 0, "\(vandal.stdout)\(vandal.stderr)")
        #expect(try treeDigest(baseHome(root)) == baseBefore, "the base is byte for byte the same")
        #expect(try treeDigest(pr2Home) == pr2Before, "the other cache is byte for byte the same")

        // The untouched PR still builds offline from what it shares -- even a crate whose marker
        // it lost, which cargo unpacks again over the links (replacing them, never writing through);
        // verify finds nothing wrong with its shared, root-owned inodes and heal gives none of them
        // to the runner.
        let relinked = try firstFile(under: pr2Home + "/registry/src", named: ".cargo-ok")
        let pr2Build = try siloWithToolchain(["exec", "--key", "pr-2", "--user", "1000", "--cargo-config", registry.configPath, "--", "sh", "-c",
                                              "rm \(relinked) && cargo build --offline --locked 2>&1"], root: root, cwd: w2, scratch: scratch)
        #expect(pr2Build.status == 0, "\(pr2Build.stdout)")
        #expect(try linkCount(relinked) == 1 && FileSystem.status(relinked)?.uid == 1000, "cargo re-extracted that crate as the job's own files")
        #expect(try treeDigest(baseHome(root)) == baseBefore, "re-extraction over links leaves the base alone")
        let verify = try silo(["verify", "--key", "pr-2", "--uid", "1000", "--heal", "--json"], root: root)
        let problems = (try jsonObject(verify.stdout)["problems"] as? [[String: Any]] ?? []).filter { $0["severity"] as? String != "info" }
        #expect(problems.isEmpty, "\(problems)")
        #expect(try treeDigest(baseHome(root)) == baseBefore, "a heal of a seeded cache leaves the base alone")
        #expect(registry.requests() == requestsAfterSeed, "seeding and the offline builds made no request")

        // Accounting: the seeded caches cost about their own additions, not a copy of the base each.
        let du = try jsonObject(try silo(["du", "--json"], root: root).stdout)
        let caches = du["caches"] as? [String: Any] ?? [:], bases = du["bases"] as? [String: Any] ?? [:]
        let baseBytes = try #require(bases["bytes"] as? Int)
        let apparent = try #require(caches["apparent_bytes"] as? Int), unique = try #require(caches["unique_bytes"] as? Int)
        let disk = try #require(du["disk_bytes"] as? Int)
        #expect(apparent - unique >= 2 * baseBytes * 8 / 10, "two caches share most of the base: apparent \(apparent), unique \(unique), base \(baseBytes)")
        // (The margin is the root's own files: the store, lock files, directories.)
        #expect(disk <= baseBytes + unique + 1024 * 1024, "the root is the base once plus what is unique: disk \(disk)")
        let ls = try silo(["ls", "--size", "--json"], root: root)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(ls.stdout.utf8)) as? [[String: Any]])
        let pr2 = try #require(rows.first { $0["key"] as? String == "pr-2" })
        #expect(pr2["base"] as? String == "default/1")
        let shared = (pr2["bytes"] as? Int ?? 0) - (pr2["unique_bytes"] as? Int ?? 0)
        #expect(shared >= baseBytes * 8 / 10, "what pr-2 shares is about the base: \(pr2)")
    }

    @Test("ext4: a root job gets copies, so even root cannot reach the base; unsafe hard links are refused",
          .enabled(if: runningAsRoot, "needs root"))
    func rootJobGetsCopies() throws {
        let root = try makeRoot()
        try promoteMain(root: root, workspace: try workspace("ws-copy"))
        let refused = try silo(["exec", "--key", "pr-7", "--seed", "hardlink", "--", "true"], root: root)
        #expect(refused.status == 1 && refused.stderr.contains("--seed hardlink is unsafe here: the job runs as root"), "\(refused.stderr)")
        #expect(!exists(root + "/caches/pr-7/1"), "nothing was created")

        let baseBefore = try treeDigest(baseHome(root))
        let r = try silo(["exec", "--key", "pr-8", "--", "sh", "-c", vandalism], root: root, cwd: scratch.file("ws-copy"))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("by copy"), "\(r.stderr)")
        let copied = try firstFile(under: baseHome(root) + "/registry/src", named: "lib.rs")
        #expect(linkCount(copied) == 1, "no cache shares the base's inodes")
        #expect(try treeDigest(baseHome(root)) == baseBefore)
    }

    @Test("XFS with reflink: a seeded cache shares extents, builds offline, and a root job's writes stay its own",
          .enabled(if: runningAsRoot && LoopMount.xfsAvailable, "the reflink path needs root (loop mount) and mkfs.xfs; skipped"))
    func reflinkIsolation() throws {
        let xfs = try LoopMount("xfs", megabytes: 600)
        let root = try makeRoot(in: xfs.mountPoint)
        let ws = try workspace("ws-xfs")
        try promoteMain(root: root, workspace: ws)
        #expect(readFile(root + "/bases/default/1/BASE").contains("\"method\":\"reflink\""))
        registry.stop()
        defer { try? registry.start() }

        for key in ["pr-1", "pr-2"] {
            let r = try silo(["exec", "--key", key, "--cargo-config", registry.configPath, "--", "sh", "-c", "cargo build --offline --locked 2>&1"], root: root, cwd: ws)
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
            #expect(r.stderr.contains("from base default/1 by reflink"), "\(r.stderr)")
        }
        let baseBefore = try treeDigest(baseHome(root))
        let pr2Before = try treeDigest(root + "/caches/pr-2/1/home")
        let vandal = try silo(["exec", "--key", "pr-1", "--", "sh", "-c", vandalism], root: root, cwd: ws)
        #expect(vandal.status == 0, "\(vandal.stderr)")
        let written = try firstFile(under: root + "/caches/pr-1/1/home/registry/src", named: "lib.rs")
        #expect(readFile(written).contains("vandal") || (try? FileSystem.status(written))??.size == 1, "as root the job really wrote its own copy")
        #expect(try treeDigest(baseHome(root)) == baseBefore)
        #expect(try treeDigest(root + "/caches/pr-2/1/home") == pr2Before)

        // Shared extents count once: 2 caches and the base cost about one base plus their targets.
        let du = try jsonObject(try silo(["du", "--json"], root: root).stdout)
        let caches = du["caches"] as? [String: Any] ?? [:]
        let baseBytes = (du["bases"] as? [String: Any])?["bytes"] as? Int ?? 0
        let apparent = caches["apparent_bytes"] as? Int ?? 0, disk = du["disk_bytes"] as? Int ?? .max
        #expect(baseBytes > 0 && disk < apparent + baseBytes - baseBytes / 2, "disk \(disk), apparent \(apparent), base \(baseBytes)")
    }
}
