// Parsing and printing of the units people type: durations (90m, 36h, 7d) and sizes (500G, 200MiB).

import Foundation

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
public func formatTimestamp(_ seconds: Double) -> String {
    var t = time_t(seconds)
    var tm = tm()
    gmtime_r(&t, &tm)
    return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// "3m ago"-style age for tables.
public func formatAge(_ seconds: Double, now: Double) -> String {
    let age = max(0, now - seconds)
    return formatDuration(age.rounded(.down)) + " ago"
}
