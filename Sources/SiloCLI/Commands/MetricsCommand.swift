import SiloCore
import SiloSystem
import Foundation

struct MetricsCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "metrics",
        summary: "Print the root's metrics in Prometheus text format, or write them for node_exporter's textfile collector.",
        options: [
            OptionSpec("--textfile", value: "PATH", help: "Write to PATH (a .prom file in node_exporter's --collector.textfile.directory) by temp file and rename, so a scrape never reads half a file."),
            OptionSpec("--top", value: "N", help: "Keys exported one by one, largest first; the rest are summed under key=\"(other)\". Default: 20."),
        ],
        discussion: """
        Per-key bytes (as last measured by reap or ls --size) and seconds since last use, cache and key counts,
        leases by kind, base generations, reap and verify counters from the store, and the root filesystem's
        free and total bytes. A scrape reads the store and the lock files; it never walks the caches.
        """
    )

    var textfile: String?
    var top: Int

    init(_ args: ParsedArguments) throws(SiloError) {
        textfile = try args.value("--textfile").map { p throws(SiloError) in
            guard p.hasSuffix(".prom") else { throw .usage("--textfile '\(displayable(p))' does not end in .prom; node_exporter's textfile collector reads only *.prom files") }
            return try absolutePath(p, what: "--textfile")
        }
        if let t = args.value("--top") {
            guard let n = Int(t), n >= 0, n <= 10_000 else { throw .usage("--top '\(displayable(t))' is not a key count; expected a number from 0 to 10000") }
            top = n
        } else { top = 20 }
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let root = try context.root()
        try root.prepare()
        var options = MetricsOptions()
        options.top = top
        let text = try Metrics.render(root, options: options)
        guard let textfile else {
            print(text, terminator: "")
            return 0
        }
        do {
            try FileSystem.writeAtomically(textfile, text)
        } catch {
            throw SiloError("cannot write --textfile \(textfile): \(error)")
        }
        context.log.info("wrote \(text.split(separator: "\n").filter { !$0.hasPrefix("#") }.count) samples to \(textfile)")
        return 0
    }
}
