// `silo metrics`: the root as Prometheus text exposition (format 0.0.4), for a scrape or for
// node_exporter's textfile collector.
//
// Cardinality is bounded: per-key series exist for the `top` keys by bytes only; every other key
// is summed into one series labelled key="_other", so a fleet with thousands of PR keys exports
// top+1 series per metric, not thousands. Sizes are the last measured ones (reap and `ls --size`
// measure), so a scrape reads the store and the lock files but never walks the caches.

import SiloSystem
import Foundation

public struct MetricsOptions: Sendable {
    /// Keys exported one by one; the rest are summed under key="_other".
    public var top = 20
    public init() {}
}

public enum Metrics {
    /// The label value the keys beyond `top` are summed under: parentheses are no key characters,
    /// so no real key can be mistaken for the sum.
    public static let otherLabel = "(other)"

    public static func render(_ root: SiloRoot, options: MetricsOptions = MetricsOptions(), now: Double = Clock.now()) throws(SiloError) -> String {
        let store = try Store(root: root)
        _ = try store.syncWithDisk()
        let records = try store.records()
        let totals = try store.runTotals()
        let leases = LeaseManager(root: root)

        // Per key: bytes over its slots, and the most recent use.
        var bytes: [String: Int64] = [:], lastUse: [String: Double] = [:]
        var leasedJobs = 0, leasedRecorded = 0
        for r in records {
            bytes[r.key.rawValue, default: 0] += r.bytes ?? 0
            lastUse[r.key.rawValue] = max(lastUse[r.key.rawValue] ?? 0, r.lastUsed)
            if !leases.liveRecords(key: r.key, slot: r.slot, now: now).isEmpty { leasedRecorded += 1 } else if leases.isLeased(key: r.key, slot: r.slot) { leasedJobs += 1 }
        }
        let ranked = bytes.keys.sorted { (bytes[$0]!, $1) > (bytes[$1]!, $0) }
        let shown = Array(ranked.prefix(options.top)), rest = ranked.dropFirst(options.top)

        var out = Exposition()
        out.family("silo_cache_bytes", "gauge", "Bytes of a key's caches, all slots, as last measured; keys beyond the top \(options.top) are summed under key=\"\(otherLabel)\".")
        for k in shown { out.sample("silo_cache_bytes", ["key": k], Double(bytes[k]!)) }
        if !rest.isEmpty { out.sample("silo_cache_bytes", ["key": otherLabel], Double(rest.reduce(0) { $0 + bytes[$1]! })) }
        out.family("silo_cache_last_use_age_seconds", "gauge", "Seconds since a job last used the key; for key=\"\(otherLabel)\", the most recent of those keys.")
        for k in shown { out.sample("silo_cache_last_use_age_seconds", ["key": k], max(0, now - lastUse[k]!)) }
        if !rest.isEmpty { out.sample("silo_cache_last_use_age_seconds", ["key": otherLabel], max(0, now - rest.map { lastUse[$0]! }.max()!)) }
        out.family("silo_caches", "gauge", "Caches (key and slot) under the root.")
        out.sample("silo_caches", [:], Double(records.count))
        out.family("silo_keys", "gauge", "Keys with a cache under the root.")
        out.sample("silo_keys", [:], Double(bytes.count))
        out.family("silo_caches_bytes", "gauge", "Bytes of all caches, as last measured.")
        out.sample("silo_caches_bytes", [:], Double(bytes.values.reduce(0, +)))
        out.family("silo_leases", "gauge", "Caches held right now, by kind: a job silo runs (flock), or a recorded lease.")
        out.sample("silo_leases", ["kind": "job"], Double(leasedJobs))
        out.sample("silo_leases", ["kind": "recorded"], Double(leasedRecorded))
        let bases = BaseStore(root: root)
        out.family("silo_base_generations", "gauge", "Base generations under the root (current and retired).")
        out.sample("silo_base_generations", [:], Double(bases.names().reduce(0) { $0 + bases.generations($1).count }))

        out.family("silo_reap_runs_total", "counter", "Reap runs recorded in the store.")
        out.sample("silo_reap_runs_total", [:], Double(totals.reapRuns))
        out.family("silo_reap_deleted_caches_total", "counter", "Caches reap deleted.")
        out.sample("silo_reap_deleted_caches_total", [:], Double(totals.reapCachesDeleted))
        out.family("silo_reap_deleted_files_total", "counter", "Files reap deleted.")
        out.sample("silo_reap_deleted_files_total", [:], Double(totals.reapFilesDeleted))
        out.family("silo_reap_freed_bytes_total", "counter", "Bytes reap freed.")
        out.sample("silo_reap_freed_bytes_total", [:], Double(totals.reapBytesFreed))
        out.family("silo_reap_failures_total", "counter", "Entries reap could not delete.")
        out.sample("silo_reap_failures_total", [:], Double(totals.reapFailures))
        if let last = totals.lastReap {
            out.family("silo_reap_last_run_timestamp_seconds", "gauge", "When the last reap started (Unix time).")
            out.sample("silo_reap_last_run_timestamp_seconds", [:], last)
        }
        out.family("silo_verify_runs_total", "counter", "silo verify --key runs recorded in the store.")
        out.sample("silo_verify_runs_total", [:], Double(totals.verifyRuns))
        out.family("silo_verify_problems_total", "counter", "Problems verify found, by severity.")
        out.sample("silo_verify_problems_total", ["severity": "error"], Double(totals.verifyErrors))
        out.sample("silo_verify_problems_total", ["severity": "warning"], Double(totals.verifyWarnings))
        out.family("silo_verify_healed_total", "counter", "Problems verify --heal repaired.")
        out.sample("silo_verify_healed_total", [:], Double(totals.verifyHealed))
        out.family("silo_verify_open_problems_total", "counter", "Problems left open after verify runs, summed over the runs.")
        out.sample("silo_verify_open_problems_total", [:], Double(totals.verifyRemaining))

        if let space = try? FileSystem.space(root.path) {
            out.family("silo_filesystem_avail_bytes", "gauge", "Bytes available to unprivileged users on the root's filesystem.")
            out.sample("silo_filesystem_avail_bytes", [:], Double(space.available))
            out.family("silo_filesystem_size_bytes", "gauge", "Size of the root's filesystem.")
            out.sample("silo_filesystem_size_bytes", [:], Double(space.total))
        }
        return out.text
    }
}

/// Builds text exposition: HELP and TYPE once per family, then its samples.
struct Exposition {
    var text = ""

    mutating func family(_ name: String, _ type: String, _ help: String) {
        text += "# HELP \(name) \(help.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n"))\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: [String: String], _ value: Double) {
        let l = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\(Self.escape($0.value))\"" }.joined(separator: ",")
        text += name + (l.isEmpty ? "" : "{\(l)}") + " " + Self.format(value) + "\n"
    }

    static func escape(_ v: String) -> String {
        v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return String(format: "%.3f", v)
    }
}
