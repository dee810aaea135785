// silo's own messages go to stderr, one line each, prefixed `silo: `, so they never mix with the
// job's stdout. `--quiet` keeps errors only.

import SiloSystem

public struct Logger: Sendable {
    public enum Level: Int, Sendable { case error, warning, info }
    public var level: Level

    public init(level: Level = .info) { self.level = level }

    public func info(_ message: String) { emit(.info, message) }
    public func warning(_ message: String) { emit(.warning, "warning: " + message) }
    public func error(_ message: String) { emit(.error, message) }

    func emit(_ l: Level, _ message: String) {
        guard l.rawValue <= level.rawValue else { return }
        // One write(2) per line: lines from concurrent silo processes never interleave mid-line.
        try? FileDescriptor(rawValue: 2).writeAll("silo: " + message + "\n")
    }
}
