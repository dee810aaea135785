// What `silo reap` deletes, as plain data and pure functions: no disk, no clock, no locks here.
// The mechanism (Reaper) measures, asks this file for a plan, and carries it out; tests check the
// plan with tables of ages, sizes and leased flags.
//
// Order, as the issue and an operator's intuition have it:
//   1. every cache unused for longer than max-age goes;
//   2. then the least recently used first, until the root's total is within max-size and the
//      filesystem has min-free available;
//   3. a leased cache, or one whose key matches a --keep pattern, never goes, whatever the budget:
//      it is reported as kept, with the reason.
// Ties in last use are broken by key then slot, so a plan is the same on every run.

/// Free space to keep on the root's filesystem: a share of its size, or a number of bytes.
public enum FreeSpace: Sendable, Equatable, CustomStringConvertible {
    case percent(Double)
    case bytes(Int64)

    /// The free bytes wanted on a filesystem of `total` bytes.
    public func bytes(ofTotal total: Int64) -> Int64 {
        switch self {
        case .percent(let p): return Int64((Double(total) * p / 100).rounded(.up))
        case .bytes(let b): return b
        }
    }

    public var description: String {
        switch self {
        case .percent(let p): return p == p.rounded() ? "\(Int(p))%" : "\(p)%"
        case .bytes(let b): return formatBytes(b)
        }
    }
}

public struct ReapPolicy: Sendable, Equatable {
    /// Default 7 days: a PR that saw no CI run for a week is usually merged or abandoned, and a
    /// re-run after that pays one warm-up (from a base, once bases exist). GitHub's hosted cache
    /// evicts entries unused for 7 days too, so fleets already plan for it.
    public static let defaultMaxAge: Double = 7 * 86_400
    /// Default 15 %: room for the largest build's target dir to grow while caches are being
    /// collected, and ext4/XFS keep their allocation fast below ~85 % full.
    public static let defaultMinFree = FreeSpace.percent(15)

    public var maxAge: Double = Self.defaultMaxAge
    /// No default: min-free already keeps the disk in budget; set this when silo shares the disk.
    public var maxSize: Int64?
    public var minFree: FreeSpace = Self.defaultMinFree
    public var keep: [KeyPattern] = []

    public init(maxAge: Double = Self.defaultMaxAge, maxSize: Int64? = nil, minFree: FreeSpace = Self.defaultMinFree, keep: [KeyPattern] = []) {
        self.maxAge = maxAge
        self.maxSize = maxSize
        self.minFree = minFree
        self.keep = keep
    }
}

/// A cache as the policy sees it.
public struct ReapCandidate: Sendable, Equatable {
    public var key: CacheKey
    public var slot: Int
    public var lastUsed: Double
    public var bytes: Int64
    public var leased: Bool

    public init(key: CacheKey, slot: Int, lastUsed: Double, bytes: Int64, leased: Bool) {
        self.key = key
        self.slot = slot
        self.lastUsed = lastUsed
        self.bytes = bytes
        self.leased = leased
    }
}

public enum ReapVerdict: Sendable, Equatable {
    /// Unused for `age` seconds, longer than max-age.
    case deleteAge(age: Double)
    /// The root held `total` bytes, more than max-size.
    case deleteSize(total: Int64)
    /// The filesystem had `free` bytes available, less than min-free wanted.
    case deleteFree(free: Int64, wanted: Int64)
    case keepLeased
    case keepPattern(String)
    case keepWithinBudget

    public var deletes: Bool {
        switch self {
        case .deleteAge, .deleteSize, .deleteFree: return true
        default: return false
        }
    }
}

public struct ReapDecision: Sendable, Equatable {
    public var candidate: ReapCandidate
    public var verdict: ReapVerdict
}

/// The filesystem holding the root, as statvfs reports it.
public struct DiskSpace: Sendable, Equatable {
    public var total: Int64
    public var available: Int64
    /// Bytes of the root that belong to no candidate (the bases, whose inodes seeded caches
    /// share): they count toward --max-size, but no deletion of a cache frees them.
    public var otherRootBytes: Int64
    public init(total: Int64, available: Int64, otherRootBytes: Int64 = 0) {
        self.total = total
        self.available = available
        self.otherRootBytes = otherRootBytes
    }
}

public enum ReapPlanner {
    /// The decision for every candidate, least recently used first. Bytes freed by a deletion are
    /// counted as available at once: each cache's bytes are measured unique to it.
    public static func plan(_ candidates: [ReapCandidate], disk: DiskSpace, policy: ReapPolicy, now: Double) -> [ReapDecision] {
        let ordered = candidates.sorted {
            ($0.lastUsed, $0.key.rawValue, $0.slot) < ($1.lastUsed, $1.key.rawValue, $1.slot)
        }
        var total = ordered.reduce(disk.otherRootBytes) { $0 + $1.bytes }
        var available = disk.available
        let wantedFree = policy.minFree.bytes(ofTotal: disk.total)
        var decisions: [ReapDecision] = []
        // Pass 1: protections and age.
        for c in ordered {
            let verdict: ReapVerdict
            if c.leased {
                verdict = .keepLeased
            } else if let p = policy.keep.first(where: { $0.matches(c.key.rawValue) }) {
                verdict = .keepPattern(p.text)
            } else if now - c.lastUsed > policy.maxAge {
                verdict = .deleteAge(age: now - c.lastUsed)
                total -= c.bytes
                available += c.bytes
            } else {
                verdict = .keepWithinBudget
            }
            decisions.append(ReapDecision(candidate: c, verdict: verdict))
        }
        // Pass 2: budget, least recently used first, among what pass 1 left deletable.
        for i in decisions.indices where decisions[i].verdict == .keepWithinBudget {
            let c = decisions[i].candidate
            if let maxSize = policy.maxSize, total > maxSize {
                decisions[i].verdict = .deleteSize(total: total)
            } else if available < wantedFree {
                decisions[i].verdict = .deleteFree(free: available, wanted: wantedFree)
            } else {
                continue
            }
            total -= c.bytes
            available += c.bytes
        }
        return decisions
    }
}

/// A `--keep` pattern: a key, or a glob with `*` (any run of characters) and `?` (one character).
public struct KeyPattern: Sendable, Equatable {
    public let text: String

    public init(validating text: String, option: String = "--keep") throws(SiloError) {
        if text.isEmpty { throw .usage("\(option) '' is empty; expected a key or a glob like 'release-*'") }
        if let bad = text.unicodeScalars.first(where: { !CacheKey.isAllowed($0) && $0 != "*" && $0 != "?" }) {
            throw .usage("\(option) '\(displayable(text))' contains \(CacheKey.describe(bad)); expected [A-Za-z0-9._-] and the wildcards * and ?")
        }
        self.text = text
    }

    public func matches(_ key: String) -> Bool {
        Self.glob(Array(text.unicodeScalars), Array(key.unicodeScalars))
    }

    /// Iterative glob match with backtracking to the last `*`: linear in practice, no recursion.
    static func glob(_ p: [Unicode.Scalar], _ s: [Unicode.Scalar]) -> Bool {
        var pi = 0, si = 0
        var star = -1, mark = 0
        while si < s.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == s[si]) {
                pi += 1; si += 1
            } else if pi < p.count && p[pi] == "*" {
                star = pi; mark = si; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; si = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
