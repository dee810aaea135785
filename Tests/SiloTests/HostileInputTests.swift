// Hostile input, as root: links and mounts planted in caches, bad keys, garbage for every flag of
// every command, a corrupt and a locked store, a full filesystem during exec. Nothing outside the
// root may change (decoys hashed before and after), every error is one clear line, and exit codes
// are the documented ones (0, 1, 2, 75; never a crash).

import Foundation
import Testing
@testable import SiloCLI
@testable import SiloCore
import SiloSystem

@Suite("hostile input", .serialized, .enabled(if: runningAsRoot, "as root, where a mistake would do the most harm"))
struct HostileInputTests {
    @Test("links and a bind mount planted in caches to a decoy: every command that walks leaves the decoy as it was")
    func plantedLinks() throws {
        let root = TempDir(), decoy = TempDir("silo-decoy")
        try sh("""
            mkdir -p \(decoy.path)/dir/sub && echo secret > \(decoy.path)/secret && echo deep > \(decoy.path)/dir/sub/file && \
            chown 0:0 \(decoy.path)/secret && chmod 0600 \(decoy.path)/secret && touch -d 2006-07-24 \(decoy.path)/dir/sub/file
            """)
        let before = try treeDigest(decoy.path)
        #expect(try silo(["exec", "--key", "main", "--", "true"], root: root.path).status == 0)
        #expect(try silo(["exec", "--key", "pr-1", "--", "true"], root: root.path).status == 0)
        for k in ["main", "pr-1"] {
            let home = root.file("caches/\(k)/1/home")
            try sh("""
                mkdir -p \(home)/registry/src/r-0000000000000000/c-1.0.0 && ln -s \(decoy.path)/secret \(home)/registry/src/r-0000000000000000/c-1.0.0/lib.rs && \
                ln -s \(decoy.path)/dir \(home)/registry/src/r-0000000000000000/linkdir && ln \(decoy.path)/secret \(home)/hard && \
                mkdir -p \(home)/registry/bound && mount --bind \(decoy.path)/dir \(home)/registry/bound
                """)
        }
        defer { for k in ["main", "pr-1"] { _ = try? run("/bin/umount", ["-l", root.file("caches/\(k)/1/home/registry/bound")]) } }
        let commands: [[String]] = [
            ["exec", "--key", "pr-1", "--", "true"],               // freshens sources: never through a link
            ["verify", "--key", "pr-1", "--heal", "--uid", "1000"],
            ["fix-owner", "--key", "pr-1", "--uid", "1000", "--gid", "1000"],
            ["ls", "--size"], ["du"], ["metrics"],
            ["promote", "--key", "main", "--no-verify"],          // links are left out of a base
            ["exec", "--key", "pr-2", "--", "true"],               // seeded from it
            ["reap", "--max-age", "0"],                            // deletes links as links, leaves the mount
        ]
        for args in commands {
            let r = try silo(args, root: root.path)
            #expect([0, 1].contains(r.status), "\(args): \(r.status) \(r.stderr)")
        }
        #expect(try treeDigest(decoy.path) == before, "nothing outside the root changed")
        let st = try #require(try FileSystem.status(decoy.file("dir/sub/file")))
        #expect(st.modifiedTime < 1_200_000_000, "freshening never followed a link")
        #expect(!exists(root.file("bases/default/1/home/registry/src/r-0000000000000000/linkdir")), "no link reaches a base")
    }

    static let badKeys = ["../etc", "a/../../b", "..", "pr 1", "pr\u{0}1", String(repeating: "k", count: 10_000), "ключ", "🦀", "pr-1\n", ""]

    @Test("bad keys are refused in one line by every command that takes one, and nothing is created")
    func badKeys() throws {
        let root = TempDir()
        for key in Self.badKeys where !key.contains("\u{0}") {
            for command in [["exec", "--key", key, "--", "true"], ["promote", "--key", key], ["mount", "--key", key], ["env", "--key", key],
                            ["lease", "acquire", "--key", key, "--holder", "h", "--ttl", "1h"], ["fix-owner", "--key", key], ["verify", "--key", key],
                            ["diagnose", "--key", key, "-"], ["promote", "--key", "main", "--as", key], ["exec", "--key", "k", "--from", key, "--", "true"]] {
                let r = try silo(command, root: root.path)
                #expect(r.status == 2, "\(command.prefix(2)) \(key.prefix(20).debugDescription): \(r.status) \(r.stderr.prefix(200))")
                #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.count < 400, "one short line: \(r.stderr.prefix(300))")
            }
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: root.file("caches"))) ?? []
        #expect(entries.isEmpty, "\(entries)")
        #expect(!exists("/etc/caches") && !exists(root.path + "/../etc"))
    }

    @Test("garbage for every flag of every command: a usage error or a clear error, never a crash")
    func garbageFlags() throws {
        let root = TempDir(), decoy = TempDir("silo-decoy")
        try "keep\n".write(toFile: decoy.file("f"), atomically: true, encoding: .utf8)
        let before = try treeDigest(decoy.path)
        let garbage = ["", "-1", "../../\(decoy.path)", String(repeating: "x", count: 5000), "1e999", "NaN", "\u{1B}[2J", "ø"]
        var runs = 0
        for type in SiloCLI.commandTypes {
            let spec = type.spec
            let positional = spec.positionals.first.map { p -> [String] in
                switch p { case "ACTION": return ["acquire"]; case "EVENT": return ["job-completed"]; default: return [] }
            } ?? []
            for option in spec.options where option.value != nil {
                for g in garbage {
                    var args = [spec.name] + positional + [option.name, g]
                    if spec.trailing != nil { args += ["--", "true"] }
                    let r = try silo(args, root: root.path)
                    runs += 1
                    #expect([0, 1, 2, 75].contains(r.status), "\(args.prefix(3)) \(g.prefix(12).debugDescription): exit \(r.status) \(r.stderr.prefix(200))")
                    if r.status != 0 {
                        #expect(r.stderr.split(separator: "\n").count <= 2 && !r.stderr.isEmpty, "\(args.prefix(3)): \(r.stderr.prefix(300))")
                    }
                }
            }
        }
        #expect(runs > 300, "every valued flag of every command was tried (\(runs))")
        #expect(try treeDigest(decoy.path) == before)
    }

    @Test("a corrupt store is moved aside and rebuilt; a locked one is waited for, not broken")
    func store() throws {
        let root = TempDir()
        #expect(try silo(["exec", "--key", "a", "--", "true"], root: root.path).status == 0)
        try "not a database".write(toFile: root.file("silo.db"), atomically: false, encoding: .utf8)
        let rebuilt = try silo(["ls", "--json"], root: root.path)
        #expect(rebuilt.status == 0 && rebuilt.stderr.contains("was corrupt") && rebuilt.stderr.contains("rebuilt 1 record"), "\(rebuilt.stderr)")
        let locker = start("/usr/bin/sqlite3", [root.file("silo.db"), "BEGIN EXCLUSIVE; INSERT INTO reap_runs VALUES(1,1,1,1,1,1);", ".shell sleep 2", "COMMIT;"])
        try locker.run()
        usleep(300_000)
        let t0 = Clock.monotonic()
        let waited = try silo(["exec", "--key", "b", "--", "true"], root: root.path)
        #expect(waited.status == 0, "\(waited.stderr)")
        #expect(Clock.monotonic() - t0 > 1, "it waited for the lock")
        _ = locker.wait()
        let rows = try JSONSerialization.jsonObject(with: Data(try silo(["ls", "--json"], root: root.path).stdout.utf8)) as? [[String: Any]] ?? []
        #expect(Set(rows.compactMap { $0["key"] as? String }) == ["a", "b"])
    }

    @Test("a full filesystem during exec: one clear error, the job not started, nothing half-made")
    func fullDuringExec() throws {
        let fs = try LoopMount("ext4", megabytes: 16)
        let root = fs.mountPoint + "/root"
        #expect(try silo(["exec", "--key", "a", "--", "true"], root: root).status == 0)
        // Every block, the reserved ones too (root may use them): big writes, then small ones.
        try sh("dd if=/dev/zero of=\(fs.mountPoint)/filler bs=1M 2>/dev/null; dd if=/dev/zero of=\(fs.mountPoint)/filler2 bs=4k 2>/dev/null; dd if=/dev/zero of=\(fs.mountPoint)/filler3 bs=512 2>/dev/null; true")
        let marker = fs.mountPoint + "/../job-ran"
        let r = try silo(["exec", "--key", "b", "--", "sh", "-c", "touch \(marker)"], root: root)
        #expect(r.status == 1 && r.stderr.contains("No space left on device"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(!exists(marker), "the job did not run")
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: root + "/caches/b")) ?? []
        #expect(entries.isEmpty, "\(entries)")
        let existing = try silo(["exec", "--key", "a", "--", "true"], root: root)
        #expect([0, 1].contains(existing.status), "an existing cache still runs or fails clearly: \(existing.stderr)")
    }
}
