// `silo diagnose`, the andon: read a failed CI log, name what broke in the cache, and say how to fix
// it. Pure functions over text: no cargo, no disk.
//
// Each failure class is recognised by the error shapes real cargo and rustc print for it; the logs
// in fixtures/logs were made by making a real cargo fail each way (fixtures/logs/produce), and the
// clean ones there must raise no alarm. A shape is a line pattern, optionally confirmed by the cause
// lines cargo prints under it ("Caused by:"), so one failure is read as one story: the lines that
// matched, the chain of causes down to the root cause, and the silo command that fixes it.
//
// What is deliberately not a cache failure: a compile error in the workspace's own code, a failing
// test, a dependency missing from Cargo.toml. Those name workspace paths, not registry or target
// paths, and they stay "no known cache failure".

import Foundation

public enum FailureClass: String, Sendable, Encodable, CaseIterable {
    case foreignOwnership = "foreign-ownership"
    case markerFilesMissing = "marker-files-missing"
    case unlockedWriters = "unlocked-concurrent-writers"
    case deleterDuringBuild = "deleter-during-build"
    case lockWait = "lock-wait"
    case targetRace = "target-dir-race"

    public var title: String {
        switch self {
        case .foreignOwnership: return "foreign ownership: files of the cache belong to another uid"
        case .markerFilesMissing: return "marker present but files missing: cargo trusts a crate whose sources are incomplete"
        case .unlockedWriters: return "unlocked concurrent writers: two cargos unpacked into one registry, each under its own lock"
        case .deleterDuringBuild: return "a deleter under a running build: sources vanished while cargo was compiling them"
        case .lockWait: return "a lock wait that never ends: cargo waited for a lock until the job was killed"
        case .targetRace: return "target-dir race: two builds wrote one target dir at once"
        }
    }
}

/// One line of the log that matched, 1-based.
public struct MatchedLine: Sendable, Encodable, Equatable {
    public var line: Int
    public var text: String
}

public struct Diagnosis: Sendable, Encodable {
    public var `class`: FailureClass
    public var title: String
    public var lines: [MatchedLine]
    /// From the symptom down to the root cause.
    public var causes: [String]
    /// The silo command that repairs the cache.
    public var fix: String
    /// What stops it from happening again.
    public var prevent: String
    /// The cache the log names, when its paths are under a silo root.
    public var key: String?
}

/// Where in a fleet a path of the log is: a silo cache (key, slot), or a bare CARGO_HOME.
struct PathContext {
    var key: String?
    var slot: Int?
    var home: String?
    var path: String

    /// The first path in `text` under a registry or target dir.
    static func find(in text: String) -> PathContext? {
        // A CARGO_HOME path (<home>/registry/..., <home>/git/..., its lock files) or a target-dir
        // path (<dir>/target/..., or <dir>/debug|release/... for a target dir of another name, as
        // a container's /cargo-target is).
        guard let m = firstMatch(#"(/[^\s`'"]*?)/(registry|git)/[^\s`'":]*|(/[^\s`'"]*?)/\.package-cache[^\s`'":]*|/[^\s`'"]*?/target/[^\s`'":]*|/[^\s`'"]*?/(debug|release)/[^\s`'":]+"#, text) else { return nil }
        let path = m.0
        let home = [m.1[1], m.1[3]].first { !$0.isEmpty }
        var c = PathContext(key: nil, slot: nil, home: home, path: path)
        if let k = firstMatch(#"/caches/([A-Za-z0-9][A-Za-z0-9._-]{0,63})/([0-9]+)/(home|target)/"#, path) {
            c.key = k.1[1]
            c.slot = Int(k.1[2])
        }
        return c
    }
}

/// The first match of `pattern` in `text`: the whole match and its groups ("" for a group that did not take part).
func firstMatch(_ pattern: String, _ text: String) -> (String, [String])? {
    guard let re = try? NSRegularExpression(pattern: pattern) else { return nil }
    let ns = text as NSString
    guard let m = re.firstMatch(in: text, range: NSRange(location: 0, length: ns.length)) else { return nil }
    let groups = (0..<m.numberOfRanges).map { i -> String in
        let r = m.range(at: i)
        return r.location == NSNotFound ? "" : ns.substring(with: r)
    }
    return (groups[0], groups)
}

public enum Diagnoser {
    /// The cache failure `log` shows, nil when it shows none that silo knows.
    /// `key`: the job's key, for the fix when the log's paths do not name it (a container's
    /// /cargo-home says nothing of the key it was mounted from).
    public static func diagnose(_ log: String, runnerUID: UInt32? = nil, key: String? = nil) -> Diagnosis? {
        let lines = log.split(separator: "\n", omittingEmptySubsequences: false).map { String($0).replacingOccurrences(of: "\r", with: "") }
        for detector in detectors {
            if let d = detector(Log(lines: lines, key: key), runnerUID) { return d }
        }
        return nil
    }

    typealias Detector = @Sendable (Log, UInt32?) -> Diagnosis?

    /// In order: the first that recognises the log names it. Ownership and concurrency come first
    /// because their errors can drag missing-file errors behind them.
    static let detectors: [Detector] = [foreignOwnership, unlockedWriters, targetRace, deleterDuringBuild, markerFilesMissing, lockWait]
}

/// The log as lines, with the searches the detectors share.
struct Log: Sendable {
    let lines: [String]
    /// The key given with --key, when the caller knows it.
    var key: String? = nil

    /// Indices of lines matching `pattern`.
    func find(_ pattern: String) -> [Int] {
        guard let re = try? NSRegularExpression(pattern: pattern) else { return [] }
        return lines.indices.filter { i in
            re.firstMatch(in: lines[i], range: NSRange(location: 0, length: (lines[i] as NSString).length)) != nil
        }
    }

    func matched(_ indices: [Int]) -> [MatchedLine] {
        Array(Set(indices)).sorted().map { MatchedLine(line: $0 + 1, text: lines[$0].trimmingCharacters(in: .whitespaces)) }
    }

    /// The error line a "Caused by:" cause at `index` belongs to, and every line between.
    func story(endingAt index: Int) -> [Int] {
        var i = index
        var out = [index]
        while i > 0 {
            i -= 1
            let l = lines[i]
            if l.hasPrefix("error") { out.append(i); break }
            if !l.trimmingCharacters(in: .whitespaces).isEmpty && !l.hasPrefix("Caused by:") { out.append(i) }
        }
        return out
    }
}
