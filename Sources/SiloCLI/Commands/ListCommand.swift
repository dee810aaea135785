import SiloCore
import SiloSystem
import Foundation

struct ListCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "ls",
        summary: "List the caches under the root: key, slot, state, size, last use, uses.",
        options: [
            OptionSpec("--json", help: "One JSON array of objects (fields documented in docs/json.md)."),
            OptionSpec("--size", help: "Measure each cache now: apparent (allocated bytes, each inode once) and unique (what only it holds, not shared with a base or another cache)."),
        ]
    )

    var json: Bool
    var measure: Bool

    init(_ args: ParsedArguments) throws(SiloError) {
        json = args.flag("--json")
        measure = args.flag("--size")
    }

    /// One row of `silo ls --json`. The field names are a stable interface: add, never rename.
    struct Row: Encodable {
        var key: String
        var slot: Int
        var state: String
        var holders: [HolderInfo]
        var bytes: Int64?
        var bytes_measured: Int64?
        /// With --size: what only this cache holds (what deleting it frees).
        var unique_bytes: Int64?
        /// The base it was seeded from, NAME/GENERATION.
        var base: String?
        var last_used: Int64
        var created: Int64
        var uses: Int
        var last_exit: Int?
        var home: String
        var target: String
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let root = try context.root()
        try root.prepare()
        let store = try Store(root: root)
        for notice in store.notices { context.log.warning(notice) }
        _ = try store.syncWithDisk()
        let leases = LeaseManager(root: root)
        let layout = CacheLayout(root: root)
        let now = Clock.now()
        var rows: [Row] = []
        for record in try store.records() {
            let paths = layout.paths(record.key, record.slot)
            guard (try? FileSystem.status(paths.slotDirectory)) != nil else { continue }
            let leased = leases.isLeased(key: record.key, slot: record.slot)
            var bytes = record.bytes
            var measured = record.bytesMeasured
            var unique: Int64?
            if measure, let usage = try? TreeWalk.measure(paths.slotDirectory) {
                bytes = usage.bytes
                unique = usage.uniqueBytes
                measured = now
                try store.recordSize(key: record.key, slot: record.slot, bytes: usage.bytes, at: now)
            }
            rows.append(Row(key: record.key.rawValue, slot: record.slot, state: leased ? "leased" : "free",
                            holders: leased ? leases.holders(key: record.key, slot: record.slot) : [],
                            bytes: bytes, bytes_measured: measured.map { Int64($0) }, unique_bytes: unique,
                            base: CacheLayout.base(ofSlot: paths.slotDirectory)?.description, last_used: Int64(record.lastUsed), created: Int64(record.created),
                            uses: record.uses, last_exit: record.lastExit, home: paths.home, target: paths.target))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            guard let data = try? encoder.encode(rows) else { throw SiloError("cannot encode the cache list as JSON") }
            print(String(decoding: data, as: UTF8.self))
            return 0
        }
        var table = [["KEY", "SLOT", "STATE", "SIZE"] + (measure ? ["UNIQUE"] : []) + ["BASE", "LAST USED", "USES"]]
        for r in rows {
            var state = r.state
            if let h = r.holders.first {
                let who = h.holder.map { "'\($0)' until \(formatTimestamp(h.expires ?? 0))" } ?? "\(h.jobPid ?? h.pid) (\(h.command.prefix(40)))"
                state = "leased by \(who)" + (r.holders.count > 1 ? " +\(r.holders.count - 1)" : "")
            }
            let size = r.bytes.map { formatBytes($0) + (measure ? "" : "*") } ?? "-"
            let unique = measure ? [r.unique_bytes.map(formatBytes) ?? "-"] : []
            table.append([r.key, String(r.slot), state, size] + unique + [r.base ?? "-", formatAge(Double(r.last_used), now: now), String(r.uses)])
        }
        let widths = (0..<table[0].count).map { c in table.map { $0[c].count }.max() ?? 0 }
        for line in table {
            print(zip(line, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
        if !measure && rows.contains(where: { $0.bytes != nil }) { print("* size as last measured; --size measures now") }
        return 0
    }
}
