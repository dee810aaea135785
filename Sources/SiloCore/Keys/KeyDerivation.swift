// `silo key`: a cache key from the CI job's environment (GitHub Actions variables).
//
// The one thing this must never do is return a key that many unrelated jobs share: a fleet that
// derived its cache directory from an unset variable put every PR into the parent directory.
// So every path either finds something that identifies the job or throws.
//
// Mapping:
//   pull_request, pull_request_target  -> pr-<N>   (N from GITHUB_REF refs/pull/N/merge, else the event payload)
//   merge_group                        -> mq-<base>-pr-<N> from gh-readonly-queue/<base>/pr-<N>-<sha>
//   push, schedule, workflow_dispatch, and other events -> the ref name (GITHUB_REF_NAME)
// A ref that does not fit the key alphabet as it is (slashes, upper case, non-ASCII, too long) is
// rewritten to a readable prefix plus `-` and 8 hex digits of a hash of the original ref, so two
// different refs never collapse onto one key.

import Foundation

public enum KeyDerivation {
    /// Length of the hash suffix in hex digits: 32 bits makes an accidental collision between two
    /// refs of one repository about one in four billion, short enough to leave a readable prefix.
    static let hashDigits = 8

    public static func derive(environment env: [String: String], shard: String? = nil, eventPayload: String? = nil) throws(SiloError) -> CacheKey {
        // A bad --shard is a usage error whatever the environment, so it is checked first.
        if let shard {
            if shard.isEmpty { throw .usage("--shard '' is empty; expected 1 or more characters of [A-Za-z0-9._-]") }
            if let bad = shard.unicodeScalars.first(where: { !CacheKey.isAllowed($0) }) {
                throw .usage("--shard '\(CacheKey.preview(shard))' contains \(CacheKey.describe(bad)); expected only [A-Za-z0-9._-]")
            }
        }
        let event = nonEmpty(env["GITHUB_EVENT_NAME"])
        var base: String
        switch event {
        case "pull_request", "pull_request_target":
            guard let number = pullRequestNumber(env: env, payload: eventPayload) else {
                throw SiloError("cannot derive a key: GITHUB_EVENT_NAME is '\(event!)' but no pull request number was found in GITHUB_REF ('\(env["GITHUB_REF"] ?? "")', expected refs/pull/<N>/merge) or in the event payload at GITHUB_EVENT_PATH; pass --key")
            }
            base = "pr-\(number)"
        case "merge_group":
            guard let ref = nonEmpty(env["GITHUB_REF_NAME"]) ?? nonEmpty(env["GITHUB_REF"]).map(stripRefPrefix) else {
                throw SiloError("cannot derive a key: GITHUB_EVENT_NAME is 'merge_group' but GITHUB_REF_NAME and GITHUB_REF are unset; pass --key")
            }
            base = mergeGroupKey(ref)
        case .some:
            guard let ref = nonEmpty(env["GITHUB_REF_NAME"]) ?? nonEmpty(env["GITHUB_REF"]).map(stripRefPrefix) else {
                throw SiloError("cannot derive a key: GITHUB_EVENT_NAME is '\(event!)' but GITHUB_REF_NAME and GITHUB_REF are unset; pass --key")
            }
            base = ref
        case nil:
            throw SiloError("cannot derive a key: GITHUB_EVENT_NAME is not set, so nothing identifies this job; run inside a GitHub Actions job or pass --key")
        }
        if let shard { base += "-s" + shard }
        return try fit(base)
    }

    /// `base` as a key: unchanged when it is already valid, else a sanitized prefix plus a hash.
    public static func fit(_ raw: String) throws(SiloError) -> CacheKey {
        if let key = try? CacheKey(validating: raw) { return key }
        var prefix = ""
        for scalar in raw.unicodeScalars {
            if CacheKey.isAllowed(scalar) {
                prefix.unicodeScalars.append(Unicode.Scalar(UInt8(ascii: scalar) | (isUpper(scalar) ? 0x20 : 0)))
            } else if !prefix.hasSuffix("-") {
                prefix += "-"
            }
        }
        while let f = prefix.first, f == "." || f == "-" { prefix.removeFirst() }
        let suffix = "-" + hexHash(raw)
        let room = CacheKey.maxLength - suffix.count
        if prefix.count > room { prefix = String(prefix.prefix(room)) }
        while prefix.hasSuffix("-") || prefix.hasSuffix(".") { prefix.removeLast() }
        if prefix.isEmpty { prefix = "ref" }
        return try CacheKey(validating: prefix + suffix)
    }

    static func isUpper(_ s: Unicode.Scalar) -> Bool { ("A"..."Z").contains(s) }

    static func nonEmpty(_ s: String?) -> String? {
        guard let s, !s.isEmpty else { return nil }
        return s
    }

    static func stripRefPrefix(_ ref: String) -> String {
        for p in ["refs/heads/", "refs/tags/"] where ref.hasPrefix(p) { return String(ref.dropFirst(p.count)) }
        return ref
    }

    /// N from `refs/pull/N/merge` (or `/head`), else `"number": N` in the event payload.
    static func pullRequestNumber(env: [String: String], payload: String?) -> Int? {
        if let ref = env["GITHUB_REF"], ref.hasPrefix("refs/pull/") {
            let parts = ref.split(separator: "/")
            if parts.count >= 3, let n = Int(parts[2]), n > 0 { return n }
        }
        guard let payload, let data = payload.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        // pull_request payloads carry the number at the top and inside "pull_request".
        let pr = object["pull_request"] as? [String: Any]
        for candidate in [object["number"], pr?["number"]] {
            if let n = candidate as? Int, n > 0 { return n }
        }
        return nil
    }

    /// `gh-readonly-queue/<base>/pr-<N>-<sha>` -> `mq-<base>-pr-<N>`. The sha is dropped on purpose:
    /// each queue entry gets a new sha, and one cache per PR in the queue is what keeps it warm.
    static func mergeGroupKey(_ ref: String) -> String {
        let name = stripRefPrefix(ref)
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0] == "gh-readonly-queue", let last = parts.last, last.hasPrefix("pr-") else {
            return name
        }
        let base = parts[1..<(parts.count - 1)].joined(separator: "/")
        let pr = last.split(separator: "-").prefix(2).joined(separator: "-") // pr-<N>
        return "mq-\(base)-\(pr)"
    }

    /// FNV-1a 64 over the UTF-8 bytes, first `hashDigits` hex digits. Stable across versions and hosts:
    /// it names directories, so it must never change.
    static func hexHash(_ s: String) -> String {
        var h: UInt64 = 0xcbf29ce484222325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        let hex = String(h, radix: 16)
        return String((String(repeating: "0", count: 16 - hex.count) + hex).prefix(hashDigits))
    }
}
