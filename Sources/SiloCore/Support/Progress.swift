// Progress of long work (reap, verify, seeding, promotion) on a terminal: one line on stderr,
// redrawn in place at most every `interval`, with items, bytes, rate and time left, and erased when
// the work ends. When stderr is not a terminal (CI logs, journald) nothing of it is printed: a log
// gets the one line per action the commands log, never a stream of carriage returns.

import SiloSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class Progress: @unchecked Sendable {
    /// Redraws per second at most: enough to look alive, few enough to cost nothing next to the work.
    static let interval = 0.1

    let label: String
    let totalItems: Int?
    let unit: String
    let lock = NSLock()
    var items = 0
    var bytes: Int64 = 0
    let started = Clock.monotonic()
    var lastDraw = 0.0
    var drawn = false
    let fd: Int32

    /// The line on screen now, so that a log message can erase it first (and it is drawn again
    /// on its next advance): messages and progress share one terminal line.
    nonisolated(unsafe) static var current: Progress?
    static let currentLock = NSLock()

    /// A progress line for `label`, or nil when stderr is no terminal.
    public static func onTerminal(_ label: String, total: Int?, unit: String = "files", fd: Int32 = 2) -> Progress? {
        guard isatty(fd) == 1 else { return nil }
        let p = Progress(label: label, total: total, unit: unit, fd: fd)
        currentLock.lock(); current = p; currentLock.unlock()
        return p
    }

    /// Erases the line on screen, if any, before a message is written.
    static func clearForMessage() {
        currentLock.lock()
        let p = current
        currentLock.unlock()
        p?.erase()
    }

    init(label: String, total: Int?, unit: String, fd: Int32) {
        self.label = label
        totalItems = total
        self.unit = unit
        self.fd = fd
    }

    /// Counts `items` more done, `bytes` more handled; safe from any thread.
    public func advance(items n: Int = 1, bytes b: Int64 = 0) {
        lock.lock()
        items += n
        bytes += b
        let now = Clock.monotonic()
        let draw = now - lastDraw >= Self.interval
        if draw { lastDraw = now }
        let line = draw ? Self.line(label: label, items: items, total: totalItems, bytes: bytes, elapsed: now - started, unit: unit) : nil
        if let line { write(line) }
        lock.unlock()
    }

    /// Erases the line for good.
    public func finish() {
        erase()
        Self.currentLock.lock()
        if Self.current === self { Self.current = nil }
        Self.currentLock.unlock()
    }

    func erase() {
        lock.lock()
        if drawn { _ = try? FileDescriptor(rawValue: fd).writeAll("\r\u{1B}[K") }
        drawn = false
        lastDraw = 0
        lock.unlock()
    }

    func write(_ line: String) {
        drawn = true
        _ = try? FileDescriptor(rawValue: fd).writeAll("\r\u{1B}[K" + line)
    }

    /// "silo: seeding pr-1: 12,034/103,536 files, 150.0 MiB, 52,000 files/s, 2s left"
    static func line(label: String, items: Int, total: Int?, bytes: Int64, elapsed: Double, unit: String) -> String {
        var s = "silo: \(label): \(grouped(items))"
        if let total { s += "/\(grouped(total))" }
        s += " \(unit)"
        if bytes > 0 { s += ", \(formatBytes(bytes))" }
        if elapsed > 0 {
            let rate = Double(items) / elapsed
            s += ", \(grouped(Int(rate))) \(unit)/s"
            if let total, rate > 0, items < total { s += ", \(formatDuration((Double(total - items) / rate).rounded(.up))) left" }
        }
        return s
    }

    static func grouped(_ n: Int) -> String {
        let digits = Array(String(n))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return out
    }
}
