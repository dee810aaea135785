// The reap policy is plain data and pure functions: tables of ages, sizes and leased flags in,
// decisions out, with ties and exact boundaries.

import Testing
@testable import SiloCore

private let day = 86_400.0
private let GiB: Int64 = 1 << 30
private let now = 1_800_000_000.0

private func cache(_ key: String, slot: Int = 1, age: Double, gib: Int64 = 1, leased: Bool = false) -> ReapCandidate {
    ReapCandidate(key: try! CacheKey(validating: key), slot: slot, lastUsed: now - age, bytes: gib * GiB, leased: leased)
}

private func plan(_ c: [ReapCandidate], total: Int64 = 1000 * GiB, available: Int64 = 900 * GiB, _ policy: ReapPolicy) -> [String: ReapVerdict] {
    var out: [String: ReapVerdict] = [:]
    for d in ReapPlanner.plan(c, disk: DiskSpace(total: total, available: available), policy: policy, now: now) {
        out["\(d.candidate.key)/\(d.candidate.slot)"] = d.verdict
    }
    return out
}

private func deleted(_ verdicts: [String: ReapVerdict]) -> Set<String> {
    Set(verdicts.filter { $0.value.deletes }.map(\.key))
}

@Suite("reap policy")
struct ReapPolicyTests {
    @Test("max-age: strictly longer than max-age goes; exactly max-age stays")
    func ageBoundary() {
        let p = ReapPolicy(maxAge: 7 * day, minFree: .percent(0))
        let v = plan([cache("old", age: 7 * day + 1), cache("edge", age: 7 * day), cache("new", age: 1)], p)
        #expect(v["old/1"] == .deleteAge(age: 7 * day + 1))
        #expect(v["edge/1"] == .keepWithinBudget)
        #expect(v["new/1"] == .keepWithinBudget)
    }

    @Test("a leased cache is never deleted, however old and whatever the budget")
    func leasedNeverDeleted() {
        let p = ReapPolicy(maxAge: 0, maxSize: 0, minFree: .percent(100))
        let v = plan([cache("busy", age: 365 * day, gib: 500, leased: true), cache("idle", age: 365 * day)], p)
        #expect(v["busy/1"] == .keepLeased)
        #expect(v["idle/1"]?.deletes == true)
    }

    @Test("--keep patterns protect keys by glob")
    func keepPatterns() throws {
        let p = ReapPolicy(maxAge: 0, minFree: .percent(0), keep: [try KeyPattern(validating: "main"), try KeyPattern(validating: "release-*")])
        let v = plan([cache("main", age: 30 * day), cache("release-1.2", age: 30 * day), cache("mainline", age: 30 * day), cache("pr-1", age: 30 * day)], p)
        #expect(v["main/1"] == .keepPattern("main"))
        #expect(v["release-1.2/1"] == .keepPattern("release-*"))
        #expect(deleted(v) == ["mainline/1", "pr-1/1"])
    }

    @Test("max-size: least recently used first until the root is within max-size", arguments: [
        // (max-size GiB, expected deleted keys) for caches a (oldest) .. d (newest), 10 GiB each = 40 GiB
        (40, Set<String>()),              // exactly at the limit: nothing
        (39, ["a/1"]),
        (30, ["a/1"]),                    // 30 after one deletion: exactly within
        (29, ["a/1", "b/1"]),
        (0, ["a/1", "b/1", "c/1", "d/1"]),
    ] as [(Int64, Set<String>)])
    func maxSize(limit: Int64, expected: Set<String>) {
        let p = ReapPolicy(maxAge: 365 * day, maxSize: limit * GiB, minFree: .percent(0))
        let c = [cache("a", age: 4 * day, gib: 10), cache("b", age: 3 * day, gib: 10), cache("c", age: 2 * day, gib: 10), cache("d", age: 1 * day, gib: 10)]
        #expect(deleted(plan(c, p)) == expected)
    }

    @Test("min-free: delete LRU until the filesystem has the wanted share free")
    func minFree() {
        // 100 GiB filesystem with 10 GiB free; 15% wanted = 15 GiB: one 10 GiB cache is enough.
        let p = ReapPolicy(maxAge: 365 * day, minFree: .percent(15))
        let c = [cache("a", age: 3 * day, gib: 10), cache("b", age: 2 * day, gib: 10), cache("c", age: 1 * day, gib: 10)]
        let v = plan(c, total: 100 * GiB, available: 10 * GiB, p)
        #expect(v["a/1"] == .deleteFree(free: 10 * GiB, wanted: 15 * GiB))
        #expect(deleted(v) == ["a/1"])
        // Exactly at the wanted free space: nothing goes.
        #expect(deleted(plan(c, total: 100 * GiB, available: 15 * GiB, p)).isEmpty)
        // As a size instead of a share.
        let bytes = ReapPolicy(maxAge: 365 * day, minFree: .bytes(25 * GiB))
        #expect(deleted(plan(c, total: 100 * GiB, available: 10 * GiB, bytes)) == ["a/1", "b/1"])
    }

    @Test("space freed by age deletions counts toward the budget before LRU deletions")
    func ageFreesBudget() {
        let p = ReapPolicy(maxAge: 10 * day, maxSize: 25 * GiB, minFree: .percent(0))
        let c = [cache("ancient", age: 20 * day, gib: 10), cache("b", age: 2 * day, gib: 10), cache("c", age: 1 * day, gib: 10)]
        let v = plan(c, p)
        #expect(v["ancient/1"] == .deleteAge(age: 20 * day))
        #expect(v["b/1"] == .keepWithinBudget, "20 GiB left after the age pass is within 25 GiB")
    }

    @Test("leased caches count in the total but the next idle one goes instead")
    func leasedCountsInTotal() {
        let p = ReapPolicy(maxAge: 365 * day, maxSize: 15 * GiB, minFree: .percent(0))
        let c = [cache("a", age: 3 * day, gib: 10, leased: true), cache("b", age: 2 * day, gib: 10)]
        let v = plan(c, p)
        #expect(v["a/1"] == .keepLeased)
        #expect(v["b/1"] == .deleteSize(total: 20 * GiB))
    }

    @Test("ties in last use are broken by key, then slot: the same plan every run")
    func ties() {
        let p = ReapPolicy(maxAge: 365 * day, maxSize: 20 * GiB, minFree: .percent(0))
        let c = [cache("b", age: day, gib: 10), cache("a", slot: 2, age: day, gib: 10), cache("a", age: day, gib: 10)]
        let decisions = ReapPlanner.plan(c, disk: DiskSpace(total: 1000 * GiB, available: 900 * GiB), policy: p, now: now)
        #expect(decisions.map { "\($0.candidate.key)/\($0.candidate.slot)" } == ["a/1", "a/2", "b/1"])
        #expect(decisions.filter { $0.verdict.deletes }.map { "\($0.candidate.key)/\($0.candidate.slot)" } == ["a/1"])
        #expect(ReapPlanner.plan(c.reversed(), disk: DiskSpace(total: 1000 * GiB, available: 900 * GiB), policy: p, now: now) == decisions)
    }

    @Test("max-age 0 with min-free 100% takes every idle cache, no leased one")
    func everythingIdle() {
        let p = ReapPolicy(maxAge: 0, minFree: .percent(100))
        let v = plan([cache("a", age: 0.001), cache("b", age: 5, leased: true), cache("c", age: 1000)], p)
        #expect(deleted(v) == ["a/1", "c/1"])
    }

    @Test("glob matching", arguments: [
        ("release-*", "release-1.2", true), ("release-*", "release-", true), ("release-*", "releas", false),
        ("*", "anything", true), ("pr-?", "pr-1", true), ("pr-?", "pr-12", false), ("*-s*", "pr-1-s2", true),
        ("main", "main", true), ("main", "main2", false), ("a*b*c", "aXXbYYc", true), ("a*b*c", "aXXbYY", false),
    ])
    func glob(pattern: String, key: String, matches: Bool) throws {
        #expect(try KeyPattern(validating: pattern).matches(key) == matches)
    }

    @Test("sizes, durations and free space parse as documented", arguments: [
        ("500G", Int64(500) << 30), ("1.5T", Int64(1.5 * Double(1 << 40))), ("200MiB", Int64(200) << 20), ("10GB", 10_000_000_000),
        ("4096", 4096), ("1k", 1024), ("0", 0),
    ] as [(String, Int64)])
    func sizes(text: String, bytes: Int64) throws {
        #expect(try parseSize(text, flag: "--max-size") == bytes)
    }

    @Test("bad sizes, durations and percentages name the value and the form expected", arguments: ["", "G", "-1G", "1.5X", "abc", "1e30T", "+5G"])
    func badSizes(text: String) {
        do {
            _ = try parseSize(text, flag: "--max-size")
            Issue.record("'\(text)' was accepted")
        } catch {
            #expect(error.exitCode == ExitCode.usage)
            #expect(error.message.contains("--max-size '\(text)'"))
            #expect(error.message.contains("500G"))
        }
    }

    @Test("min-free takes a percentage or a size")
    func freeSpace() throws {
        #expect(try parseFreeSpace("15%", flag: "--min-free") == .percent(15))
        #expect(try parseFreeSpace("50G", flag: "--min-free") == .bytes(50 << 30))
        #expect(FreeSpace.percent(15).bytes(ofTotal: 1000) == 150)
        for bad in ["101%", "-1%", "%", "x%"] {
            #expect(throws: SiloError.self) { try parseFreeSpace(bad, flag: "--min-free") }
        }
        #expect(try parseDuration("90m", flag: "--max-age") == 5400)
        #expect(try parseDuration("2w", flag: "--max-age") == 14 * day)
    }
}
