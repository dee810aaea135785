// A cache key names one cache under the root: `pr-1031`, `main`, `release-1.2`.
//
// Keys become directory names, so the alphabet is deliberately small: ASCII letters, digits, `.`,
// `_` and `-`. A leading `.` would make hidden or `..` entries and a leading `-` reads as a flag
// to every tool an operator pipes the name into. 64 characters leave room for a readable ref name
// plus a hash suffix while keeping paths short.

public struct CacheKey: Hashable, Comparable, CustomStringConvertible, Sendable {
    public let rawValue: String

    /// The longest key accepted.
    public static let maxLength = 64

    public init(validating raw: String) throws(SiloError) {
        if raw.isEmpty {
            throw .usage("key '' is empty; expected 1-\(Self.maxLength) characters of [A-Za-z0-9._-]")
        }
        let count = raw.unicodeScalars.count
        if count > Self.maxLength {
            throw .usage("key '\(Self.preview(raw))' is \(count) characters long; expected at most \(Self.maxLength) characters of [A-Za-z0-9._-]")
        }
        for scalar in raw.unicodeScalars where !Self.isAllowed(scalar) {
            throw .usage("key '\(Self.preview(raw))' contains \(Self.describe(scalar)); expected only [A-Za-z0-9._-]")
        }
        if let first = raw.unicodeScalars.first, first == "." || first == "-" {
            throw .usage("key '\(raw)' starts with '\(first)'; expected a letter, digit or '_' first")
        }
        rawValue = raw
    }

    public static func isAllowed(_ s: Unicode.Scalar) -> Bool {
        switch s {
        case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-": return true
        default: return false
        }
    }

    /// A bad character as a human reads it: printable ones quoted, others as U+XXXX.
    static func describe(_ s: Unicode.Scalar) -> String {
        let hex = String(s.value, radix: 16, uppercase: true)
        let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        if s.properties.isWhitespace || isUnprintable(s) { return code }
        return "'\(s)' (\(code))"
    }

    /// A key as quoted in a message: see `displayable`.
    public static func preview(_ s: String) -> String { displayable(s) }

    public var description: String { rawValue }
    public static func < (a: CacheKey, b: CacheKey) -> Bool { a.rawValue < b.rawValue }
}
