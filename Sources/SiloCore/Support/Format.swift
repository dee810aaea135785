// Parsing and printing of the units people type: durations (90m, 36h, 7d) and sizes (500G, 200MiB).

import Foundation
import SiloSystem

/// Parses `90s`, `90m`, `36h`, `7d`, `2w`, or a plain number of seconds.
public func parseDuration(_ text: String, flag: String) throws(SiloError) -> Double {
    let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800]
    var number = Substring(text)
    var scale = 1.0
    if let last = number.last, let unit = units[last] {
        scale = unit
        number = number.dropLast()
    }
    guard let value = Double(number), value >= 0, value.isFinite, !number.hasPrefix("+") else {
        throw .usage("\(flag) '\(displayable(text))' is not a duration; expected a number with an optional unit s, m, h, d or w, like 90s, 30m or 36h")
    }
    return value * scale
}

public func formatDuration(_ seconds: Double) -> String {
    if seconds < 60 { return seconds == seconds.rounded() ? "\(Int(seconds))s" : String(format: "%.1fs", seconds) }
    if seconds < 3600 { return "\(Int(seconds / 60))m" }
    if seconds < 86400 { return "\(Int(seconds / 3600))h" }
    return "\(Int(seconds / 86400))d"
}

/// Binary units, as `du -h` prints them.
public func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    var value = Double(bytes)
    var i = 0
    while value >= 1024 && i < units.count - 1 { value /= 1024; i += 1 }
    return i == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[i])
}

/// UTC, to the second, ISO 8601: sortable and unambiguous across a fleet's time zones.
public func formatTimestamp(_ seconds: Double, fractional: Bool = false) -> String {
    var t = time_t(seconds.rounded(.down))
    var tm = tm()
    gmtime_r(&t, &tm)
    let base = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)
    guard fractional else { return base + "Z" }
    return base + String(format: ".%03dZ", Int((seconds - seconds.rounded(.down)) * 1000))
}

/// "3m ago"-style age for tables.
public func formatAge(_ seconds: Double, now: Double) -> String {
    let age = max(0, now - seconds)
    return formatDuration(age.rounded(.down)) + " ago"
}

/// Parses `500G`, `1.5T`, `200MiB`, `10GB` or a plain number of bytes. One-letter units and the
/// `iB` forms are binary (G = GiB = 2^30, as `du -h` and systemd read them); `KB`, `MB`, `GB`, `TB`,
/// `PB` are decimal, for whoever copies a size from a disk vendor's sheet.
public func parseSize(_ text: String, flag: String) throws(SiloError) -> Int64 {
    let units: [(String, Double)] = [
        ("KiB", 0x1p10), ("MiB", 0x1p20), ("GiB", 0x1p30), ("TiB", 0x1p40), ("PiB", 0x1p50),
        ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("PB", 1e15),
        ("K", 0x1p10), ("M", 0x1p20), ("G", 0x1p30), ("T", 0x1p40), ("P", 0x1p50), ("B", 1),
    ]
    var number = Substring(text)
    var scale = 1.0
    if let (suffix, value) = units.first(where: { text.hasSuffix($0.0) || text.hasSuffix($0.0.lowercased()) && $0.0.count == 1 }) {
        number = number.dropLast(suffix.count)
        scale = value
    }
    guard let value = Double(number), value >= 0, value.isFinite, !number.hasPrefix("+"),
          value * scale < 0x1p62 else {
        throw .usage("\(flag) '\(displayable(text))' is not a size; expected a number of bytes with an optional unit K, M, G, T (binary, also KiB ... TiB) or KB, MB, GB, TB (decimal), like 500G, 1.5T or 200MiB")
    }
    return Int64((value * scale).rounded())
}

/// Parses `--min-free`: a share of the filesystem like `15%`, or a size.
public func parseFreeSpace(_ text: String, flag: String) throws(SiloError) -> FreeSpace {
    if text.hasSuffix("%") {
        guard let p = Double(text.dropLast()), p >= 0, p <= 100, !text.hasPrefix("+") else {
            throw .usage("\(flag) '\(displayable(text))' is not a percentage; expected 0% to 100%, like 15%, or a size like 50G")
        }
        return .percent(p)
    }
    return .bytes(try parseSize(text, flag: flag))
}

/// Parses `UID[:GID]` or `NAME[:GID]` (a user of the passwd database); the group defaults to the
/// user's primary group, else to the uid.
public func parseUser(_ text: String, flag: String) throws(SiloError) -> (uid: UInt32, gid: UInt32) {
    let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
    let form = "expected a uid like 1000, a user name, or UID:GID like 1000:1000"
    guard let first = parts.first, !first.isEmpty else { throw .usage("\(flag) '\(displayable(text))' names no user; \(form)") }
    let uid: UInt32
    if let n = UInt32(first), n < UInt32.max {
        uid = n
    } else if let n = Identity.uid(ofUser: first) {
        uid = n
    } else {
        throw .usage("\(flag) '\(displayable(text))': no user '\(displayable(first))' in the passwd database; \(form)")
    }
    if parts.count == 2 {
        guard let g = UInt32(parts[1]), g < UInt32.max else { throw .usage("\(flag) '\(displayable(text))' has a bad group '\(displayable(parts[1]))'; \(form)") }
        return (uid, g)
    }
    return (uid, Identity.primaryGroup(of: uid) ?? uid)
}
