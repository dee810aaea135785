// `silo exec` semantics with real processes: exit statuses, signals, environment, leases, the
// store's recovery, and the root's checks. No cargo here (see CargoIntegrationTests).

import Foundation
import Testing
@testable import SiloCore
import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

/// Polls `condition` every 20 ms for up to `seconds`.
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

/// True once silo has written the job's pid into a holder file of `key` (it does so right after
/// the spawn, so a job can be running a moment before). Tests that compare the root byte for byte
/// wait for this, or they race that one write.
func jobRecorded(root: String, key: String, slot: Int = 1) -> Bool {
    let dir = "\(root)/locks/\(key)/\(slot).holders"
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    return names.contains { readFile("\(dir)/\($0)").contains("\"job_pid\"") }
}

func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

func readFile(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

@Suite("exec semantics")
struct ExecTests {
    @Test("passes the job's exit status through")
    func exitStatus() throws {
        let root = TempDir()
        #expect(try silo(["exec", "--key", "k", "--", "sh", "-c", "exit 7"], root: root.path).status == 7)
        #expect(try silo(["exec", "--key", "k", "--", "true"], root: root.path).status == 0)
    }

    @Test("a job killed by signal N exits 128+N")
    func killedBySignal() throws {
        let root = TempDir()
        #expect(try silo(["exec", "--key", "k", "--", "sh", "-c", "kill -KILL $$"], root: root.path).status == 137)
        #expect(try silo(["exec", "--key", "k", "--", "sh", "-c", "kill -TERM $$"], root: root.path).status == 143)
    }

    @Test("a missing command exits 127 with one line and creates no cache")
    func commandNotFound() throws {
        let root = TempDir()
        let r = try silo(["exec", "--key", "k", "--", "no-such-command-xyz", "arg"], root: root.path)
        #expect(r.status == 127)
        #expect(r.stderr == "silo: no-such-command-xyz: command not found\n")
        #expect(!exists(root.file("caches/k")))
        let slash = try silo(["exec", "--key", "k", "--", "./nope/cmd"], root: root.path)
        #expect(slash.status == 127)
        #expect(slash.stderr == "silo: ./nope/cmd: command not found\n")
    }

    @Test("a file that is not executable exits 126")
    func notExecutable() throws {
        let root = TempDir()
        let script = root.file("script")
        try "#!/bin/sh\n".write(toFile: script, atomically: true, encoding: .utf8)
        let r = try silo(["exec", "--key", "k", "--", script], root: root.path)
        #expect(r.status == 126)
        #expect(r.stderr.contains("permission denied"))
    }

    @Test("the job gets CARGO_HOME, CARGO_TARGET_DIR and SILO_* pointing into its own cache")
    func environment() throws {
        let root = TempDir()
        let r = try silo(["exec", "--key", "pr-7", "--", "sh", "-c", "echo $CARGO_HOME; echo $CARGO_TARGET_DIR; echo $SILO_KEY; echo $SILO_DIR; echo $SILO_ROOT; echo $SILO_SLOT"], root: root.path)
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let slot = root.path + "/caches/pr-7/1"
        #expect(lines == [slot + "/home", slot + "/target", "pr-7", slot, root.path, "1"])
        for entry in ["registry", "git", ".package-cache", ".package-cache-mutate"] {
            #expect(exists(slot + "/home/" + entry), "CARGO_HOME lacks \(entry)")
        }
        #expect(!exists(slot + "/home/bin"), "bin/ must not be part of a cache")
    }

    @Test("--no-target leaves CARGO_TARGET_DIR as it was")
    func noTarget() throws {
        let root = TempDir()
        var env = baseEnvironment()
        env["CARGO_TARGET_DIR"] = "/somewhere/else"
        let r = try silo(["exec", "--key", "k", "--no-target", "--", "sh", "-c", "echo $CARGO_TARGET_DIR"], root: root.path, environment: env)
        #expect(r.stdout == "/somewhere/else\n")
    }

    @Test("the job runs in its own process group", arguments: ["TERM", "INT", "HUP"])
    func forwardsSignals(signal: String) throws {
        let root = TempDir()
        let ready = root.file("ready"), got = root.file("got")
        // The job reports its pid and pgid, then waits for the signal and exits 42 from the trap.
        let script = "trap 'echo \(signal) > \(got); exit 42' \(signal); echo \"$$ $(ps -o pgid= -p $$)\" > \(ready); while :; do sleep 0.05; done"
        let job = start(Repo.silo, ["--root", root.path, "exec", "--key", "k", "--", "sh", "-c", script])
        try job.run()
        #expect(eventually { readFile(ready).contains(" ") })
        let ids = readFile(ready).split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int32($0) }
        #expect(ids.count == 2 && ids[0] == ids[1], "job should lead its own process group: \(ids)")
        #expect(ids.first != job.processIdentifier)
        kill(job.processIdentifier, signal == "TERM" ? SIGTERM : signal == "INT" ? SIGINT : SIGHUP)
        let r = job.wait()
        #expect(r.status == 42)
        #expect(readFile(got) == signal + "\n")
    }

    @Test("the invoking user's cargo config is carried in; credentials only when asked")
    func cargoConfig() throws {
        let root = TempDir(), home = TempDir("silo-cargo-home")
        try "[net]\nretry = 7\n".write(toFile: home.file("config.toml"), atomically: true, encoding: .utf8)
        try "[registry]\ntoken = \"secret\"\n".write(toFile: home.file("credentials.toml"), atomically: true, encoding: .utf8)
        var env = baseEnvironment()
        env["CARGO_HOME"] = home.path
        let cache = root.path + "/caches/k/1/home"
        #expect(try silo(["exec", "--key", "k", "--", "true"], root: root.path, environment: env).status == 0)
        #expect(readFile(cache + "/config.toml") == "[net]\nretry = 7\n")
        #expect(!exists(cache + "/credentials.toml"))
        #expect(try silo(["exec", "--key", "k", "--with-credentials", "--", "true"], root: root.path, environment: env).status == 0)
        #expect(readFile(cache + "/credentials.toml").contains("secret"))
        var st = stat()
        #expect(stat(cache + "/credentials.toml", &st) == 0 && st.st_mode & 0o777 == 0o600)
        // A later run without the flag takes the token out again.
        #expect(try silo(["exec", "--key", "k", "--", "true"], root: root.path, environment: env).status == 0)
        #expect(!exists(cache + "/credentials.toml"))
        // --cargo-config wins over CARGO_HOME's file.
        let other = root.file("other.toml")
        try "[net]\noffline = true\n".write(toFile: other, atomically: true, encoding: .utf8)
        #expect(try silo(["exec", "--key", "k", "--cargo-config", other, "--", "true"], root: root.path, environment: env).status == 0)
        #expect(readFile(cache + "/config.toml") == "[net]\noffline = true\n")
        let missing = try silo(["exec", "--key", "k", "--cargo-config", root.file("nope.toml"), "--", "true"], root: root.path, environment: env)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("nope.toml"))
    }

    @Test("--wait gives up on a busy key with exit 75 and names the holder")
    func waitTimesOut() throws {
        let root = TempDir()
        let started = root.file("started")
        let holder = start(Repo.silo, ["--root", root.path, "exec", "--key", "k", "--", "sh", "-c", "touch \(started); sleep 3"])
        try holder.run()
        #expect(eventually { exists(started) })
        let t0 = Date()
        let r = try silo(["exec", "--key", "k", "--wait", "0.5", "--", "true"], root: root.path)
        #expect(r.status == 75)
        #expect(Date().timeIntervalSince(t0) < 2.5)
        #expect(r.stderr.contains("sleep 3"), "message should name the holder's command: \(r.stderr)")
        #expect(r.stderr.contains("pid "))
        #expect(holder.wait().status == 0)
        #expect(try silo(["exec", "--key", "k", "--wait", "1", "--", "true"], root: root.path).status == 0)
    }

    @Test("--share private gives concurrent jobs distinct slots and reuses free ones")
    func privateSlots() throws {
        let root = TempDir()
        let gate = root.file("gate")
        var jobs: [Running] = []
        for i in 0..<3 {
            let j = start(Repo.silo, ["--root", root.path, "exec", "--key", "k", "--share", "private", "--", "sh", "-c",
                                      "echo $SILO_SLOT > \(root.file("slot\(i)")); while [ ! -e \(gate) ]; do sleep 0.02; done"])
            try j.run()
            jobs.append(j)
        }
        #expect(eventually { (0..<3).allSatisfy { !readFile(root.file("slot\($0)")).isEmpty } })
        let slots = Set((0..<3).map { readFile(root.file("slot\($0)")) })
        #expect(slots == ["1\n", "2\n", "3\n"])
        _ = FileManager.default.createFile(atPath: gate, contents: nil)
        for j in jobs {
            let r = j.wait()
            #expect(r.status == 0, "\(r.stderr)")
        }
        let again = try silo(["exec", "--key", "k", "--share", "private", "--", "sh", "-c", "echo $SILO_SLOT"], root: root.path)
        #expect(again.stdout == "1\n")
    }

    @Test("--share shared runs beside a locked holder in the same home")
    func sharedBesideLocked() throws {
        let root = TempDir()
        let started = root.file("started"), gate = root.file("gate")
        let holder = start(Repo.silo, ["--root", root.path, "exec", "--key", "k", "--", "sh", "-c", "touch \(started); while [ ! -e \(gate) ]; do sleep 0.02; done"])
        try holder.run()
        #expect(eventually { exists(started) })
        let r = try silo(["exec", "--key", "k", "--share", "shared", "--", "sh", "-c", "echo $CARGO_HOME"], root: root.path)
        #expect(r.status == 0)
        #expect(r.stdout == root.path + "/caches/k/1/home\n")
        // A private job does not join: it takes another slot.
        let p = try silo(["exec", "--key", "k", "--share", "private", "--", "sh", "-c", "echo $SILO_SLOT"], root: root.path)
        #expect(p.stdout == "2\n")
        _ = FileManager.default.createFile(atPath: gate, contents: nil)
        #expect(holder.wait().status == 0)
    }

    @Test("SIGKILL of silo leaves the lease with the job until the job ends")
    func killedSiloKeepsLease() throws {
        let root = TempDir()
        let started = root.file("started"), gate = root.file("gate"), done = root.file("done")
        let job = start(Repo.silo, ["--root", root.path, "exec", "--key", "k", "--", "sh", "-c",
                                    "touch \(started); while [ ! -e \(gate) ]; do sleep 0.02; done; touch \(done)"])
        try job.run()
        #expect(eventually { exists(started) })
        kill(job.processIdentifier, SIGKILL)
        #expect(job.wait().status == 137)
        // The orphaned job still holds the lease: a bounded wait gives up, ls shows it leased.
        let busy = try silo(["exec", "--key", "k", "--wait", "0.3", "--", "true"], root: root.path)
        #expect(busy.status == 75)
        let ls = try silo(["ls", "--json"], root: root.path)
        #expect(ls.stdout.contains("\"state\" : \"leased\""))
        _ = FileManager.default.createFile(atPath: gate, contents: nil)
        #expect(eventually { exists(done) })
        #expect(try silo(["exec", "--key", "k", "--wait", "5", "--", "true"], root: root.path).status == 0)
        #expect(try silo(["ls", "--json"], root: root.path).stdout.contains("\"state\" : \"free\""))
    }

    @Test("a slot left half-created is never handed to a job")
    func partialCacheReplaced() throws {
        let root = TempDir()
        #expect(try silo(["exec", "--key", "other", "--", "true"], root: root.path).status == 0)
        // What a creation killed before its final rename would leave if it had built in place.
        try FileManager.default.createDirectory(atPath: root.file("caches/k/1/home/registry"), withIntermediateDirectories: true)
        try "half".write(toFile: root.file("caches/k/1/home/registry/junk"), atomically: true, encoding: .utf8)
        let r = try silo(["exec", "--key", "k", "--", "sh", "-c", "ls -A $CARGO_HOME/registry"], root: root.path)
        #expect(r.status == 0)
        #expect(r.stdout == "")
        #expect(exists(root.file("caches/k/1/.silo-cache")))
    }
}

@Suite("root and store")
struct RootAndStoreTests {
    @Test("a corrupt store is moved aside and rebuilt from the caches on disk")
    func corruptStore() throws {
        let root = TempDir()
        for k in ["a", "b"] { #expect(try silo(["exec", "--key", k, "--", "true"], root: root.path).status == 0) }
        try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: root.file("silo.db")))
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: root.file("silo.db" + suffix)) }
        let r = try silo(["ls", "--json"], root: root.path)
        #expect(r.status == 0)
        #expect(r.stderr.contains("corrupt"), "should say it rebuilt: \(r.stderr)")
        let rows = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]]
        #expect(rows?.compactMap { $0["key"] as? String }.sorted() == ["a", "b"])
        let names = try FileManager.default.contentsOfDirectory(atPath: root.path)
        #expect(names.contains { $0.hasPrefix("silo.db.broken-") }, "the broken file is kept for a post-mortem")
        // And it works as a store again.
        #expect(try silo(["exec", "--key", "a", "--", "true"], root: root.path).status == 0)
        let again = try silo(["ls", "--json"], root: root.path)
        #expect(!again.stderr.contains("corrupt"))
    }

    @Test("a missing store is rebuilt and says so")
    func missingStore() throws {
        let root = TempDir()
        #expect(try silo(["exec", "--key", "a", "--", "true"], root: root.path).status == 0)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: root.file("silo.db" + suffix)) }
        let r = try silo(["ls"], root: root.path)
        #expect(r.status == 0)
        #expect(r.stderr.contains("missing"))
        #expect(r.stdout.contains("a "))
    }

    @Test("the store records uses, last use and the last exit status")
    func recordsUse() throws {
        let root = TempDir()
        let before = Date().timeIntervalSince1970
        #expect(try silo(["exec", "--key", "k", "--", "true"], root: root.path).status == 0)
        #expect(try silo(["exec", "--key", "k", "--", "sh", "-c", "exit 3"], root: root.path).status == 3)
        let r = try silo(["ls", "--json"], root: root.path)
        let row = try #require((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])?.first)
        #expect(row["uses"] as? Int == 2)
        #expect(row["last_exit"] as? Int == 3)
        #expect((row["last_used"] as? Double ?? 0) >= before.rounded(.down))
        #expect(row["state"] as? String == "free")
    }

    @Test("a non-empty directory that is not a silo root is refused")
    func foreignRoot() throws {
        let dir = TempDir()
        try "x".write(toFile: dir.file("important.txt"), atomically: true, encoding: .utf8)
        let r = try silo(["exec", "--key", "k", "--", "true"], root: dir.path)
        #expect(r.status == 1)
        #expect(r.stderr.contains("important.txt"))
        #expect(!exists(dir.file("caches")))
    }

    @Test("a root of another layout version is refused")
    func layoutVersion() throws {
        let root = TempDir()
        try "silo-layout 99\n".write(toFile: root.file("LAYOUT"), atomically: true, encoding: .utf8)
        let r = try silo(["ls"], root: root.path)
        #expect(r.status == 1)
        #expect(r.stderr.contains("silo-layout 99"))
    }

    @Test("the root defaults to SILO_ROOT, then the user's cache dir")
    func rootDefaults() throws {
        let root = TempDir()
        var env = baseEnvironment()
        env["SILO_ROOT"] = root.path
        #expect(try run(Repo.silo, ["exec", "--key", "k", "--", "true"], environment: env).status == 0)
        #expect(exists(root.file("LAYOUT")))
    }

    @Test("root precedence: --root, SILO_ROOT, /var/lib/silo for uid 0, XDG_CACHE_HOME, ~/.cache")
    func rootResolution() throws {
        #expect(try SiloRoot.resolve(flag: "/a", environment: ["SILO_ROOT": "/b"], effectiveUID: 0).path == "/a")
        #expect(try SiloRoot.resolve(flag: nil, environment: ["SILO_ROOT": "/b/"], effectiveUID: 0).path == "/b")
        #expect(try SiloRoot.resolve(flag: nil, environment: [:], effectiveUID: 0).path == "/var/lib/silo")
        #expect(try SiloRoot.resolve(flag: nil, environment: ["XDG_CACHE_HOME": "/x", "HOME": "/h"], effectiveUID: 1000).path == "/x/silo")
        #expect(try SiloRoot.resolve(flag: nil, environment: ["HOME": "/h"], effectiveUID: 1000).path == "/h/.cache/silo")
    }

    @Test("a root on NFS or SMB is refused; the local filesystems here are not")
    func networkFilesystems() throws {
        // No NFS server can run here, so the statfs magic numbers (linux/magic.h) are checked directly.
        for (magic, name) in [(0x6969, "nfs"), (0xFF534D42, "cifs"), (0xFE534D42, "smb2")] {
            let refusal = try #require(SiloRoot.networkFilesystemRefusal(path: "/mnt/shared", statfsType: magic))
            #expect(refusal.message.contains("/mnt/shared is on \(name)") && refusal.message.contains("local disk"))
        }
        for local in ["/tmp", "/dev/shm"] where exists(local) {
            let type = try FileSystem.filesystemType(local)
            #expect(SiloRoot.networkFilesystemRefusal(path: local, statfsType: type) == nil, "\(local) has statfs type \(String(type, radix: 16))")
        }
    }
}

@Suite("first use, concurrently")
struct FirstUseTests {
    @Test("many jobs opening a brand-new store at once all get it: the switch to WAL is retried, not failed")
    func concurrentFirstOpen() throws {
        // CI caught "database is locked" once in 180 such opens: SQLite answers the WAL switch with
        // SQLITE_BUSY at once, without its busy handler, while another first user holds the file.
        for round in 0..<30 {
            let root = TempDir()
            let jobs = (0..<6).map { _ in start(Repo.silo, ["--root", root.path, "exec", "--key", "k", "--share", "private", "--", "true"]) }
            for j in jobs { try j.run() }
            for j in jobs {
                let r = j.wait()
                #expect(r.status == 0, "round \(round): \(r.stderr)")
            }
        }
    }
}
