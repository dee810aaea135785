import SiloCore
import SiloSystem
import Foundation

struct DiagnoseCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "diagnose",
        summary: "Read a failed CI log: name the cache failure, quote the lines, give the causes and the fix.",
        options: [
            OptionSpec("--uid", value: "N", help: "The runner uid, for the fix of a foreign-ownership failure. Default: $(id -u) in the printed command."),
            OptionSpec("--key", value: "KEY", help: "The job's cache key, for the fix when the log does not name it (a container's paths do not)."),
            OptionSpec("--json", help: "Print the diagnosis as JSON (null when none is known)."),
        ],
        positionals: ["LOGFILE?"],
        discussion: """
        Reads LOGFILE, or standard input when it is '-' or missing. Classes: foreign-ownership,
        marker-files-missing, unlocked-concurrent-writers, deleter-during-build, lock-wait, target-dir-race.
        Exit: 1 when the log shows one of them, 0 when it shows no known cache failure (a compile error in
        the workspace, a failing test), 2 when the log cannot be read.
        """
    )

    var path: String?
    var uid: UInt32?
    var key: String?
    var json: Bool

    /// Logs are read whole; a CI log over this is cut to its last part, where the failure is.
    static let maxBytes = 64 << 20

    init(_ args: ParsedArguments) throws(SiloError) {
        path = args.positionals.first.flatMap { $0 == "-" ? nil : $0 }
        uid = try args.value("--uid").map { v throws(SiloError) in try VerifyCommand.id(v, flag: "--uid") }
        json = args.flag("--json")
        key = try args.value("--key").map { k throws(SiloError) in try CacheKey(validating: k).rawValue }
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let data: Data
        if let path {
            guard let st = try? FileSystem.status(path), !st.isDirectory else {
                throw .usage("log '\(displayable(path))' is not a readable file; expected a CI log file, or - for standard input")
            }
            guard let fh = FileHandle(forReadingAtPath: path) else { throw .usage("log '\(displayable(path))' cannot be opened; expected a readable CI log file") }
            if st.size > Int64(Self.maxBytes) { try? fh.seek(toOffset: UInt64(st.size) - UInt64(Self.maxBytes)) }
            data = fh.readDataToEndOfFile()
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile().suffix(Self.maxBytes)
        }
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
        let d = Diagnoser.diagnose(text, runnerUID: uid, key: key)
        if json {
            if let d { print(try encodeJSON(d)) } else { print("null") }
            return d == nil ? 0 : ExitCode.failure
        }
        let name = path ?? "standard input"
        guard let d else {
            print("silo diagnose: no known cache failure in \(name) (\(lines) lines)")
            return 0
        }
        var out = "silo diagnose: \(d.class.rawValue): \(d.title)\n"
        for l in d.lines { out += "  line \(l.line): \(l.text)\n" }
        out += "causes:\n"
        for (i, c) in d.causes.enumerated() { out += "  \(i + 1). \(c)\n" }
        out += "fix:\n  \(d.fix)\nprevent:\n  \(d.prevent)\n"
        print(out, terminator: "")
        return ExitCode.failure
    }
}
