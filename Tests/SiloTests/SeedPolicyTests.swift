// The pure parts of bases: which files may be shared, which method is safe for whom, which keys
// are trusted; and the walk's accounting of shared inodes.

import Foundation
import Testing
@testable import SiloCore
import SiloSystem

@Suite("seed policy")
struct SeedPolicyTests {
    @Test("what cargo never rewrites in place is shared; what it rewrites is copied", arguments: [
        ("registry/cache/127.0.0.1-f02731c154bf3e1c/libc-0.2.155.crate", SeedAction.share),
        ("registry/src/127.0.0.1-f02731c154bf3e1c/libc-0.2.155/src/lib.rs", .share),
        ("registry/src/127.0.0.1-f02731c154bf3e1c/libc-0.2.155/.cargo-ok", .share),
        ("registry/index/127.0.0.1-f02731c154bf3e1c/.cache/li/bc/libc", .copy),
        ("registry/index/127.0.0.1-f02731c154bf3e1c/config.json", .copy),
        ("registry/CACHEDIR.TAG", .copy),
        (".global-cache", .copy),
        ("git/db/foo-0123456789abcdef/objects/pack/pack-1.pack", .share),
        ("git/db/foo-0123456789abcdef/HEAD", .copy),
        ("git/db/foo-0123456789abcdef/refs/heads/main", .copy),
        ("git/db/foo-0123456789abcdef/FETCH_HEAD", .copy),
        ("git/checkouts/foo-0123456789abcdef/abc1234/src/lib.rs", .share),
        ("git/checkouts/foo-0123456789abcdef/abc1234/.git/index", .copy),
        ("registry/cache/stray-file", .copy),
    ])
    func actions(path: String, expected: SeedAction) {
        #expect(SeedPolicy.action(forHomePath: path) == expected)
    }

    typealias P = SeedPolicy.Parties

    @Test("the default is the safest method that applies")
    func defaults() throws {
        // reflink wins whoever the job is
        #expect(try SeedPolicy.choose(P(jobUID: 0, baseOwner: 0, seederUID: 0, reflink: true), requested: nil) == .reflink)
        // a runner uid seeded by root from a root-owned base: hard links
        #expect(try SeedPolicy.choose(P(jobUID: 1000, baseOwner: 0, seederUID: 0, reflink: false), requested: nil) == .hardlink)
        // a root job: copies
        #expect(try SeedPolicy.choose(P(jobUID: 0, baseOwner: 0, seederUID: 0, reflink: false), requested: nil) == .copy)
        // the job owns the base's files (it could chmod them): copies
        #expect(try SeedPolicy.choose(P(jobUID: 1000, baseOwner: 1000, seederUID: 1000, reflink: false), requested: nil) == .copy)
        // silo as an unprivileged uid cannot link root's files (protected_hardlinks): copies
        #expect(try SeedPolicy.choose(P(jobUID: 1000, baseOwner: 0, seederUID: 1000, reflink: false), requested: nil) == .copy)
        // a dedicated base owner, seeded by that owner for a third uid: hard links
        #expect(try SeedPolicy.choose(P(jobUID: 1000, baseOwner: 990, seederUID: 990, reflink: false), requested: nil) == .hardlink)
    }

    @Test("an explicit method that is impossible or unsafe is refused, naming why")
    func refusals() {
        #expect(throws: SiloError.self) { try SeedPolicy.choose(P(jobUID: 1000, baseOwner: 0, seederUID: 0, reflink: false), requested: .reflink) }
        do {
            _ = try SeedPolicy.choose(P(jobUID: 0, baseOwner: 0, seederUID: 0, reflink: true), requested: .hardlink)
            Issue.record("hard links for a root job must be refused")
        } catch {
            #expect(error.message.contains("the job runs as root"))
        }
        do {
            _ = try SeedPolicy.choose(P(jobUID: 1000, baseOwner: 1000, seederUID: 0, reflink: false), requested: .hardlink)
            Issue.record("hard links to the job's own files must be refused")
        } catch {
            #expect(error.message.contains("owns the base's files"))
        }
        #expect((try? SeedPolicy.choose(P(jobUID: 0, baseOwner: 0, seederUID: 0, reflink: false), requested: .copy)) == .copy)
    }

    @Test("trust: protected refs by default, --trusted replaces them, pr-* and mq-* never")
    func trust() throws {
        let standard = try TrustPolicy()
        for k in ["main", "master", "release-1.2", "release-"] { #expect(standard.refusal(try CacheKey(validating: k)) == nil, "\(k)") }
        for k in ["feature-x", "mainline", "pr-1", "mq-main-pr-1", "dev"] { #expect(standard.refusal(try CacheKey(validating: k)) != nil, "\(k)") }
        let custom = try TrustPolicy(patterns: [try KeyPattern(validating: "*", option: "--trusted")])
        #expect(custom.refusal(try CacheKey(validating: "anything")) == nil)
        #expect(custom.refusal(try CacheKey(validating: "pr-7"))?.contains("never promoted") == true)
        #expect(custom.refusal(try CacheKey(validating: "mq-main-pr-7"))?.contains("never promoted") == true)
    }

    @Test("the budget counts the bases once and a cache by what deleting it frees")
    func budgetWithBases() throws {
        let now = 1_000_000.0
        func c(_ k: String, _ age: Double, _ bytes: Int64) throws -> ReapCandidate {
            ReapCandidate(key: try CacheKey(validating: k), slot: 1, lastUsed: now - age, bytes: bytes, leased: false)
        }
        var policy = ReapPolicy()
        policy.maxAge = 30 * 86400
        policy.minFree = .bytes(0)
        policy.maxSize = 1000
        // base 800 + three caches of 100 unique each = 1100 > 1000: the oldest one goes, and only one.
        let plan = ReapPlanner.plan([try c("a", 300, 100), try c("b", 200, 100), try c("c", 100, 100)],
                                    disk: DiskSpace(total: 10_000, available: 5_000, otherRootBytes: 800), policy: policy, now: now)
        #expect(plan.filter { $0.verdict.deletes }.map { $0.candidate.key.rawValue } == ["a"])
    }

    @Test("unique bytes: an inode counts for a tree only when all its links are inside it")
    func uniqueBytes() throws {
        let dir = TempDir()
        try sh("""
            cd \(dir.path) && mkdir -p base a b && head -c 40000 /dev/urandom > base/shared && ln base/shared a/shared && ln base/shared b/shared && \
            head -c 20000 /dev/urandom > a/own && head -c 8000 /dev/urandom > a/pair1 && ln a/pair1 a/pair2
            """)
        let a = try TreeWalk.measure(dir.file("a"))
        let whole = try TreeWalk.measure(dir.path)
        let shared = try #require(try FileSystem.status(dir.file("base/shared"))).allocatedBytes
        let own = try #require(try FileSystem.status(dir.file("a/own"))).allocatedBytes
        let pair = try #require(try FileSystem.status(dir.file("a/pair1"))).allocatedBytes
        let directory = try #require(try FileSystem.status(dir.file("a"))).allocatedBytes
        #expect(a.bytes == directory + shared + own + pair, "apparent: each inode once")
        #expect(a.uniqueBytes == directory + own + pair, "the shared inode is not a's; its own pair of links is")
        #expect(whole.uniqueBytes == whole.bytes, "the whole tree holds every link")
        #expect(whole.diskBytes == whole.bytes)
    }
}
