// `silo metrics`, parsed by the real Prometheus parser (python3-prometheus-client): names,
// types, units, bounded key labels, lease counts, reap and verify counters, the textfile write.

import Foundation
import Testing
@testable import SiloCore

/// Parses exposition text with prometheus_client and returns {family: {type, samples: [[name, labels, value]]}}.
private let parser = #"""
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type, "help": f.documentation, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out))
"""#

@Suite("metrics", .serialized)
struct MetricsTests {
    func parse(_ text: String, in dir: TempDir) throws -> [String: [String: Any]] {
        try text.write(toFile: dir.file("metrics.prom.txt"), atomically: true, encoding: .utf8)
        let r = try run("/bin/sh", ["-c", "/usr/bin/python3 -c \"$1\" < \"$2\"", "sh", parser, dir.file("metrics.prom.txt")])
        guard r.status == 0 else { throw TestFailure("prometheus_client rejected the exposition: \(r.stderr)\n\(text)") }
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: [String: Any]] ?? [:]
    }

    func samples(_ m: [String: [String: Any]], _ family: String) -> [(String, [String: String], Double)] {
        (m[family]?["samples"] as? [[Any]] ?? []).map { ($0[0] as? String ?? "", $0[1] as? [String: String] ?? [:], ($0[2] as? NSNumber)?.doubleValue ?? .nan) }
    }

    @Test("the exposition parses, follows the naming conventions, and bounds the key labels")
    func exposition() throws {
        let root = TempDir(), dir = TempDir()
        for (k, n) in [("pr-1", 300_000), ("pr-2", 200_000), ("pr-3", 100_000), ("pr-4", 50_000)] {
            let r = try silo(["exec", "--key", k, "--", "sh", "-c", "head -c \(n) /dev/urandom > $CARGO_TARGET_DIR/blob"], root: root.path)
            #expect(r.status == 0)
        }
        #expect(try silo(["ls", "--size"], root: root.path).status == 0, "sizes measured")
        #expect(try silo(["reap", "--max-age", "30d"], root: root.path).status == 0)
        #expect(try silo(["verify", "--key", "pr-1"], root: root.path).status == 0)
        #expect(try silo(["lease", "acquire", "--key", "pr-2", "--holder", "h1", "--ttl", "1h"], root: root.path).status == 0)
        let started = root.file("started")
        let job = start(Repo.silo, ["--root", root.path, "exec", "--key", "pr-3", "--", "sh", "-c", "touch \(started); sleep 20"])
        try job.run()
        defer { job.terminate(); _ = job.wait() }
        #expect(eventually { exists(started) })

        let r = try silo(["metrics", "--top", "2"], root: root.path)
        #expect(r.status == 0, "\(r.stderr)")
        let m = try parse(r.stdout, in: dir)
        for (name, family) in m {
            #expect(name.hasPrefix("silo_"), "\(name)")
            #expect(!(family["help"] as? String ?? "").isEmpty, "\(name) has HELP")
            let type = family["type"] as? String ?? ""
            #expect(["gauge", "counter"].contains(type), "\(name): \(type)")
            if type == "counter" { #expect((samples(m, name).first?.0 ?? "").hasSuffix("_total"), "\(name) samples end in _total") }
        }
        let bytes = samples(m, "silo_cache_bytes")
        #expect(bytes.map { $0.1["key"] ?? "" } == ["pr-1", "pr-2", "(other)"], "top 2 by size, the rest summed: \(bytes)")
        #expect(bytes[0].2 >= 300_000 && bytes[2].2 >= 150_000)
        #expect(samples(m, "silo_cache_last_use_age_seconds").count == 3)
        #expect(samples(m, "silo_caches").first?.2 == 4)
        let leases = Dictionary(uniqueKeysWithValues: samples(m, "silo_leases").map { ($0.1["kind"] ?? "", $0.2) })
        #expect(leases == ["job": 1, "recorded": 1], "\(leases)")
        #expect(samples(m, "silo_reap_runs").first?.2 == 1, "prometheus_client names a counter family without _total")
        #expect(samples(m, "silo_verify_runs").first?.2 == 1)
        #expect((samples(m, "silo_filesystem_avail_bytes").first?.2 ?? 0) > 0)
    }

    @Test("--textfile writes by temp file and rename, and refuses a name the collector would not read")
    func textfile() throws {
        let root = TempDir(), dir = TempDir()
        #expect(try silo(["exec", "--key", "main", "--", "true"], root: root.path).status == 0)
        let path = dir.file("silo.prom")
        let r = try silo(["metrics", "--textfile", path], root: root.path)
        #expect(r.status == 0, "\(r.stderr)")
        let m = try parse(readFile(path), in: dir)
        #expect(samples(m, "silo_cache_bytes").map { $0.1["key"] ?? "" } == ["main"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp") }.isEmpty, "no temp file left")
        let bad = try silo(["metrics", "--textfile", dir.file("silo.txt")], root: root.path)
        #expect(bad.status == 2 && bad.stderr.contains("does not end in .prom"), "\(bad.stderr)")
        let top = try silo(["metrics", "--top", "lots"], root: root.path)
        #expect(top.status == 2 && top.stderr.contains("--top 'lots' is not a key count"))
    }
}

@Suite("logs")
struct LogTests {
    @Test("--log-format json: every line silo writes to stderr is one JSON object with time, level, message and pid")
    func jsonLines() throws {
        let root = TempDir()
        var lines: [String] = []
        for args in [["exec", "--key", "pr-1", "--", "true"], ["lease", "acquire", "--key", "pr-2", "--holder", "h", "--ttl", "1h"],
                     ["lease", "release", "--holder", "h"], ["reap", "--max-age", "0"], ["exec", "--key", "pr-3", "--wait", "x", "--", "true"]] {
            let r = try silo(["--log-format", "json"] + args, root: root.path)
            lines += r.stderr.split(separator: "\n").map(String.init)
        }
        #expect(lines.count >= 6, "\(lines)")
        for line in lines {
            let o = try jsonObject(line)
            #expect(["info", "warning", "error"].contains(o["level"] as? String ?? ""), "\(line)")
            #expect((o["time"] as? String ?? "").hasSuffix("Z") && o["pid"] is Int && !(o["message"] as? String ?? "").isEmpty, "\(line)")
        }
        let messages = lines.compactMap { try? jsonObject($0)["message"] as? String }
        #expect(messages.contains("created cache key 'pr-1' slot 1"))
        #expect(messages.contains { $0.hasPrefix("recorded lease 'h' holds key 'pr-2' slot 1 until ") })
        #expect(messages.contains { $0.hasPrefix("deleted cache pr-1 slot 1") })
        #expect(messages.contains { $0.hasPrefix("--wait 'x' is not a duration") }, "usage errors too")
        let text = try silo(["exec", "--key", "pr-4", "--", "true"], root: root.path)
        #expect(text.stderr == "silo: created cache key 'pr-4' slot 1\n", "text stays the default")
    }
}
