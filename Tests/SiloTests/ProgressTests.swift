// Progress lines on a real pseudo-terminal (util-linux `script` runs silo on a pty), and none when
// stderr is a file: seeding, promotion, verify and reap.

import Foundation
import Testing
@testable import SiloCore

@Suite("progress", .serialized)
struct ProgressTests {
    /// Runs a shell command on a pseudo-terminal; returns what the terminal showed.
    func onTerminal(_ command: String) throws -> RunResult {
        try run("/usr/bin/script", ["-qfec", command, "/dev/null"])
    }

    @Test("seeding, promotion, verify and reap draw a progress line on a terminal and erase it; a log gets none")
    func terminalAndLog() throws {
        let root = TempDir()
        let s = "\(Repo.silo) --root \(root.path)"
        let bulk = "mkdir -p $CARGO_HOME/registry/index/r-0000000000000000 $CARGO_HOME/registry/src/r-0000000000000000 && cd $CARGO_HOME/registry/src/r-0000000000000000 && for c in $(seq 60); do mkdir -p c$c-1.0.0/src && for f in $(seq 100); do echo $f > c$c-1.0.0/src/f$f.rs; done; printf '{\"v\":1}' > c$c-1.0.0/.cargo-ok; done"
        #expect(try silo(["exec", "--key", "main", "--", "sh", "-c", bulk], root: root.path).status == 0)

        let promote = try onTerminal("\(s) promote --key main --no-verify")
        #expect(promote.stdout.contains("\r\u{1B}[Ksilo: promoting main to base default/1 by "), "\(promote.stdout.debugDescription)")
        #expect(promote.stdout.contains("/6,06"), "the total is known on a terminal")
        #expect(promote.stdout.contains("\r\u{1B}[Ksilo: promoted key 'main'"), "the line is erased before the next message")
        let seed = try onTerminal("\(s) exec --key pr-1 --seed copy -- true")
        #expect(seed.stdout.contains("silo: seeding from base default/1 by copy: "), "\(seed.stdout.debugDescription)")
        #expect(seed.stdout.contains("files/s"))
        #expect(seed.stdout.contains("\r\u{1B}[Ksilo: created cache key 'pr-1'"), "the line is erased before the next message")
        let verify = try onTerminal("\(s) verify --key pr-1")
        #expect(verify.stdout.contains("silo: verifying: ") && verify.stdout.contains("crates"), "\(verify.stdout.debugDescription)")
        for k in ["pr-2", "pr-3"] { #expect(try silo(["exec", "--key", k, "--", "true"], root: root.path).status == 0) }
        let reap = try onTerminal("\(s) reap --max-age 0")
        #expect(reap.stdout.contains("silo: reaping: ") && reap.stdout.contains("/4 caches"), "\(reap.stdout.debugDescription)")
        #expect(!reap.stdout.contains("left" + "silo:"), "a message never runs into the progress line")

        // Not a terminal: the same work, no progress, no carriage return.
        #expect(try silo(["exec", "--key", "main", "--", "true"], root: root.path).status == 0)
        let logged = try silo(["promote", "--key", "main", "--no-verify"], root: root.path)
        let seeded = try silo(["exec", "--key", "pr-9", "--seed", "copy", "--", "true"], root: root.path)
        let reaped = try silo(["reap", "--max-age", "0"], root: root.path)
        for r in [logged, seeded, reaped] {
            #expect(r.status == 0)
            #expect(!r.stderr.contains("\r") && !r.stderr.contains("files/s") && !r.stderr.contains("caches,"), "\(r.stderr.debugDescription)")
        }
        #expect(seeded.stderr.hasPrefix("silo: created cache key 'pr-9' slot 1 from base default/2 by copy"), "\(seeded.stderr)")
    }

    @Test("the line: items of the total, bytes, rate, time left")
    func line() {
        let l = Progress.line(label: "seeding pr-1", items: 12_034, total: 103_536, bytes: 157_286_400, elapsed: 0.25, unit: "files")
        #expect(l == "silo: seeding pr-1: 12,034/103,536 files, 150.0 MiB, 48,136 files/s, 2s left", "\(l)")
        #expect(Progress.line(label: "promoting", items: 5, total: nil, bytes: 0, elapsed: 1, unit: "files") == "silo: promoting: 5 files, 5 files/s")
    }
}
