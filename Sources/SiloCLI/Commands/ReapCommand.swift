import SiloCore
import Foundation

struct ReapCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "reap",
        summary: "Keep the root within its disk budget: delete unused caches, never a leased one.",
        options: [
            OptionSpec("--max-age", value: "DUR", help: "Delete every cache unused for longer than this (90m, 36h, 7d, 2w). Default: 7d."),
            OptionSpec("--max-size", value: "SIZE", help: "Then delete least recently used caches until the root holds at most this (500G, 1.5T). Default: no limit."),
            OptionSpec("--min-free", value: "PCT|SIZE", help: "... and until the filesystem has this much available (15%, 50G). Default: 15%."),
            OptionSpec("--keep", value: "PATTERN", help: "Never delete keys matching this glob (main, 'release-*'). Repeatable.", repeatable: true),
            OptionSpec("--max-src-age", value: "DUR", help: "In caches that stay, delete extracted crate sources cargo has not used for this long."),
            OptionSpec("--max-target-size", value: "SIZE", help: "In caches that stay, delete a target dir larger than this, whole, when not leased."),
            OptionSpec("--dry-run", help: "Change nothing; print what a real run would delete and why."),
            OptionSpec("--json", help: "Print the report as one JSON object (fields in docs/json.md)."),
        ],
        discussion: """
        Last use comes from silo's store, never from mtimes. A cache chosen for deletion is renamed into
        <root>/trash first and deleted there; an interrupted reap is finished by the next one. Deletion never
        follows a symlink and never enters another mount (bind mounts are skipped and reported).
        Exit status: 0 done, 1 something could not be deleted (listed), 2 usage error.
        """
    )

    var options = ReapOptions()
    var json: Bool

    init(_ args: ParsedArguments) throws(SiloError) {
        if let v = args.value("--max-age") { options.policy.maxAge = try parseDuration(v, flag: "--max-age") }
        if let v = args.value("--max-size") { options.policy.maxSize = try parseSize(v, flag: "--max-size") }
        if let v = args.value("--min-free") { options.policy.minFree = try parseFreeSpace(v, flag: "--min-free") }
        var patterns: [KeyPattern] = []
        for p in args.all("--keep") { patterns.append(try KeyPattern(validating: p)) }
        options.policy.keep = patterns
        if let v = args.value("--max-src-age") { options.maxSrcAge = try parseDuration(v, flag: "--max-src-age") }
        if let v = args.value("--max-target-size") { options.maxTargetSize = try parseSize(v, flag: "--max-target-size") }
        options.dryRun = args.flag("--dry-run")
        json = args.flag("--json")
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let report = try Reaper(root: try context.root(), log: context.log).run(options)
        if json {
            print(try encodeJSON(report))
        } else {
            print(Self.text(report), terminator: "")
        }
        return report.exitCode
    }

    static func text(_ r: ReapReport) -> String {
        var out = ""
        let verb = r.dry_run ? "would delete" : "deleted"
        for c in r.caches where c.action != "kept" {
            out += "\(c.action == "deleted" || c.action == "would-delete" ? verb : c.action)  \(c.key) slot \(c.slot)  \(formatBytes(c.bytes))  \(c.reason)\n"
        }
        // Kept caches are listed only when something protected them: "within budget" is the quiet case.
        for c in r.caches where c.action == "kept" && (c.reason.hasPrefix("in use") || c.reason.hasPrefix("protected")) {
            out += "kept  \(c.key) slot \(c.slot)  \(c.reason)\n"
        }
        for o in r.orphans { out += "orphan \(o.action)  \(o.path)  \(o.reason)\n" }
        for t in r.targets { out += "target \(t.action)  \(t.key) slot \(t.slot)  \(formatBytes(t.bytes))\n" }
        for s in r.crate_sources { out += "crate source \(s.action)  \(s.key) slot \(s.slot)  \(s.crate)  last used \(formatTimestamp(Double(s.last_used)))\n" }
        for s in r.skipped { out += "skipped  \(s.key) slot \(s.slot)  \(s.reason)\n" }
        for m in r.skipped_mounts { out += "mount point left alone  \(m)\n" }
        for f in r.failures { out += "could not delete  \(f.path)  \(f.error)\n" }
        let t = r.totals
        out += (r.dry_run ? "dry run: would delete " : "reaped ") + "\(r.caches.filter { $0.action == "would-delete" || $0.action == "deleted" }.count) cache(s)"
        if !r.dry_run { out += ", \(t.files_deleted) files" }
        out += ", \(formatBytes(r.caches.filter { $0.action == "would-delete" || $0.action == "deleted" }.reduce(0) { $0 + $1.bytes })) in \(String(format: "%.2f", t.seconds))s; "
        out += "\(formatBytes(r.available_bytes_after)) available of \(formatBytes(r.filesystem_bytes))\n"
        return out
    }
}

/// Pretty, sorted, slashes unescaped: stable output for people and for `jq`.
func encodeJSON<T: Encodable>(_ value: T) throws(SiloError) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    guard let data = try? encoder.encode(value) else { throw SiloError("cannot encode the report as JSON") }
    return String(decoding: data, as: UTF8.self)
}
