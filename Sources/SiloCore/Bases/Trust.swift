// Which keys may become a base. A base is what every later job starts from, so only a key whose
// jobs run reviewed code may be promoted: the protected branches. Pull requests run code nobody
// has reviewed yet (a build script can write anything into its CARGO_HOME), and so do merge-queue
// entries (the PR's code on top of the base branch), so `pr-*` and `mq-*` keys are refused
// whatever the patterns say.

public struct TrustPolicy: Sendable, Equatable {
    /// The protected refs of most repositories. `--trusted` replaces them.
    public static let defaultPatterns = ["main", "master", "release-*"]
    /// Keys of untrusted code, never promoted (the forms `silo key` derives for PRs and merge queues).
    public static let neverTrusted = ["pr-*", "mq-*"]

    public var patterns: [KeyPattern]

    public init(patterns: [KeyPattern]? = nil) throws(SiloError) {
        if let patterns {
            self.patterns = patterns
        } else {
            var defaults: [KeyPattern] = []
            for p in Self.defaultPatterns { defaults.append(try KeyPattern(validating: p, option: "--trusted")) }
            self.patterns = defaults
        }
    }

    /// Why `key` may not be promoted; nil when it may.
    public func refusal(_ key: CacheKey) -> String? {
        if let never = Self.neverTrusted.first(where: { (try? KeyPattern(validating: $0))?.matches(key.rawValue) == true }) {
            return "key '\(key)' matches \(never): it runs untrusted code and is never promoted"
        }
        if !patterns.contains(where: { $0.matches(key.rawValue) }) {
            return "key '\(key)' is not trusted (trusted: \(patterns.map(\.text).joined(separator: ", "))); pass --trusted PATTERN to trust it"
        }
        return nil
    }
}
