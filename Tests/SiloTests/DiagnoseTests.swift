// `silo diagnose` on logs that real cargo printed (fixtures/logs, made by fixtures/logs/produce):
// every failure log names its class, quotes its lines and prints the fix; the clean ones raise no
// alarm. The container tests (ContainerTests) also diagnose a failure they provoke live.

import Foundation
import Testing
@testable import SiloCore

@Suite("diagnose")
struct DiagnoseTests {
    static let logs = Repo.root + "/fixtures/logs"

    static let expected: [(String, String?, String)] = [
        // log, class (nil: no alarm), a piece of the fix
        ("foreign-ownership", "foreign-ownership", "sudo silo fix-owner --key pr-987 --uid $(id -u) --gid $(id -g)"),
        ("foreign-ownership-sources", "foreign-ownership", "silo fix-owner --key pr-988"),
        ("marker-files-missing", "marker-files-missing", "silo verify --heal --key pr-990"),
        ("marker-manifest-missing", "marker-files-missing", "silo verify --heal --key pr-991"),
        ("marker-lib-missing", "marker-files-missing", "silo verify --heal"),
        ("build-script-wrong-cfg", "marker-files-missing", "silo verify --heal --key pr-993"),
        ("unlocked-concurrent-writers", "unlocked-concurrent-writers", "silo verify --heal --cargo-home"),
        ("deleter-during-build", "deleter-during-build", "silo verify --heal --key pr-996"),
        ("lock-wait-package-cache", "lock-wait", "silo ls"),
        ("target-dir-race", "target-dir-race", "cargo clean"),
        ("clean-build", nil, ""),
        ("clean-compile-error", nil, ""),
        ("clean-missing-dependency", nil, ""),
        ("clean-test-failure", nil, ""),
    ]

    @Test("every produced log is diagnosed as what made it fail; clean logs raise no alarm", arguments: expected.map { $0.0 })
    func logs(name: String) throws {
        let (_, cls, fix) = try #require(Self.expected.first { $0.0 == name })
        let r = try run(Repo.silo, ["diagnose", "--json", Self.logs + "/\(name).log"])
        #expect(r.status == (cls == nil ? 0 : 1), "\(r.stderr)")
        guard let cls else {
            #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "null")
            return
        }
        let d = try jsonObject(r.stdout)
        #expect(d["class"] as? String == cls)
        #expect((d["fix"] as? String ?? "").contains(fix), "\(d["fix"] ?? "")")
        let lines = d["lines"] as? [[String: Any]] ?? []
        #expect(!lines.isEmpty, "it quotes the lines that matched")
        let text = try String(contentsOfFile: Self.logs + "/\(name).log", encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        for l in lines {
            let n = try #require(l["line"] as? Int)
            #expect(text[n - 1].trimmingCharacters(in: .whitespaces) == l["text"] as? String, "line \(n) is quoted as it is")
        }
        #expect((d["causes"] as? [String] ?? []).count >= 3, "a chain of causes down to the root cause")
        #expect((d["causes"] as? [String] ?? []).last?.hasPrefix("root cause") == true)
    }

    @Test("text output: class, quoted lines, causes, fix; standard input; exit codes")
    func textAndStdin() throws {
        let r = try run("/bin/sh", ["-c", "\(Repo.silo) diagnose < \(Self.logs)/build-script-wrong-cfg.log"])
        #expect(r.status == 1)
        #expect(r.stdout.hasPrefix("silo diagnose: marker-files-missing: "))
        #expect(r.stdout.contains("  line 11: error[E0432]: unresolved import `libc`"))
        #expect(r.stdout.contains("causes:\n  1. probe-0.1.0, a published crate, does not compile"))
        #expect(r.stdout.contains("fix:\n  silo verify --heal --key pr-993\n"))
        let clean = try run(Repo.silo, ["diagnose", "-", "--uid", "1000"], environment: baseEnvironment())
        #expect(clean.status == 0 && clean.stdout.contains("no known cache failure in standard input"), "\(clean.stdout)")
        let owner = try run(Repo.silo, ["diagnose", "--uid", "1000", Self.logs + "/foreign-ownership.log"])
        #expect(owner.stdout.contains("sudo silo fix-owner --key pr-987 --uid 1000 --gid 1000"))
        let missing = try run(Repo.silo, ["diagnose", "/nonexistent/ci.log"])
        #expect(missing.status == 2 && missing.stderr.contains("log '/nonexistent/ci.log' is not a readable file"), "\(missing.stderr)")
    }

    @Test("a lock wait that ended is no alarm; one the job was killed in is")
    func lockWaitThatEnded() {
        let waited = "    Blocking waiting for file lock on package cache\n   Compiling libc v0.2.139\n    Finished `dev` profile\n"
        #expect(Diagnoser.diagnose(waited) == nil)
        let killed = "   Compiling libc v0.2.139\n    Blocking waiting for file lock on build directory\n##[error]The operation was canceled.\n"
        let d = Diagnoser.diagnose(killed)
        #expect(d?.class == .lockWait)
        #expect(d?.causes.first?.contains("build directory") == true)
        #expect(d?.lines.map(\.line) == [2, 3])
    }

    @Test("errors in the workspace's own code that look like cache errors are not")
    func workspaceErrorsAreNotCacheErrors() {
        let own = """
               Compiling app v0.1.0 (/home/runner/work/app)
            error[E0432]: unresolved import `serde`
              --> app/src/main.rs:1:5
            error: couldn't read `app/src/missing.rs`: No such file or directory (os error 2)
            error: failed to open: /home/runner/notes.txt
            Caused by:
              Permission denied (os error 13)
            """
        #expect(Diagnoser.diagnose(own) == nil)
    }
}
