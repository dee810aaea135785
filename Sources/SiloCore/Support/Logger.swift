// silo's own messages go to stderr, one line each, so they never mix with the job's stdout:
// `silo: <message>` for people, or with `--log-format json` one JSON object per line for journald
// and log shippers ({"time","level","message","pid"}). `--quiet` keeps errors only.

import SiloSystem
import Foundation

public struct Logger: Sendable {
    public enum Level: Int, Sendable { case error, warning, info }
    public enum Format: String, Sendable { case text, json }
    public var level: Level
    public var format: Format

    public init(level: Level = .info, format: Format = .text) {
        self.level = level
        self.format = format
    }

    public func info(_ message: String) { emit(.info, message) }
    public func warning(_ message: String) { emit(.warning, message) }
    public func error(_ message: String) { emit(.error, message) }

    func emit(_ l: Level, _ message: String) {
        guard l.rawValue <= level.rawValue else { return }
        // One write(2) per line: lines from concurrent silo processes never interleave mid-line.
        Progress.clearForMessage()
        try? FileDescriptor(rawValue: 2).writeAll(Self.line(l, message, format: format, at: Clock.now()))
    }

    static func line(_ l: Level, _ message: String, format: Format, at time: Double) -> String {
        switch format {
        case .text:
            return "silo: " + (l == .warning ? "warning: " : "") + message + "\n"
        case .json:
            let name = l == .error ? "error" : l == .warning ? "warning" : "info"
            let object: [String: Any] = ["time": formatTimestamp(time, fractional: true), "level": name, "message": message, "pid": Int(getpid())]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self) + "\n"
        }
    }
}
