import SiloCore
import Foundation

struct DuCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "du",
        summary: "Show what the root costs on disk, counting bytes shared between caches and bases once.",
        options: [
            OptionSpec("--json", help: "Print the numbers as one JSON object (docs/json.md)."),
        ],
        discussion: """
        disk: every block under the root once (an inode hard-linked from many caches, or an extent they share by
        reflink, counts once). apparent: what the caches would take as separate copies. unique: what only each
        cache holds, summed: what deleting all of them would free while the bases stay.
        """
    )

    var json: Bool

    init(_ args: ParsedArguments) throws(SiloError) {
        json = args.flag("--json")
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let root = try context.root()
        try root.prepare()
        let u = try RootUsage.measure(root)
        if json {
            print(try encodeJSON(u))
            return 0
        }
        print("\(u.root): \(formatBytes(u.disk_bytes)) on disk")
        print("  caches: \(u.caches.count), \(formatBytes(u.caches.apparent_bytes)) apparent, \(formatBytes(u.caches.unique_bytes)) unique")
        print("  bases:  \(u.bases.generations) generation\(u.bases.generations == 1 ? "" : "s"), \(formatBytes(u.bases.bytes))")
        print("  trash:  \(formatBytes(u.trash_bytes))")
        if u.filesystem_bytes > 0 {
            print("  filesystem: \(formatBytes(u.available_bytes)) free of \(formatBytes(u.filesystem_bytes))")
        }
        for m in u.skipped_mounts { print("  not counted (another mount): \(m)") }
        return 0
    }
}
