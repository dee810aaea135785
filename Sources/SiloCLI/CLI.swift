// The entry point: parse once, run one command, turn every error into one line and an exit code.

import SiloCore
import CSiloShims
import SiloSystem
import Foundation

/// What every command gets besides its own arguments.
public struct Context {
    public var environment: [String: String]
    public var rootFlag: String?
    public var log: Logger

    public func root() throws(SiloError) -> SiloRoot {
        try SiloRoot.resolve(flag: rootFlag, environment: environment)
    }
}

/// A command: its spec (data the parser reads) and what it does with the parsed arguments.
public protocol SiloCommand: Sendable {
    static var spec: CommandSpec { get }
    init(_ args: ParsedArguments) throws(SiloError)
    func run(_ context: Context) throws(SiloError) -> Int32
}

public enum SiloCLI {
    public static let version = "0.1.0"
    /// The commit the binary was built from, as `make` passes it to the C shims.
    public static var commit: String { String(cString: silo_build_commit()) }

    public static let commandTypes: [any SiloCommand.Type] = [
        DiagnoseCommand.self,
        DoctorCommand.self,
        DuCommand.self,
        EnvCommand.self,
        ExecCommand.self,
        FixOwnerCommand.self,
        HookCommand.self,
        KeyCommand.self,
        LeaseCommand.self,
        ListCommand.self,
        MetricsCommand.self,
        MountCommand.self,
        PromoteCommand.self,
        ReapCommand.self,
        VerifyCommand.self,
    ]

    public static let globalOptions: [OptionSpec] = [
        OptionSpec("--root", value: "DIR", help: "Where caches live. Default: $SILO_ROOT, else /var/lib/silo as root, else $XDG_CACHE_HOME/silo or ~/.cache/silo."),
        OptionSpec("--quiet", help: "Print errors only."),
        OptionSpec("--log-format", value: "FORMAT", help: "text (default: 'silo: message') or json (one object per line: time, level, message, pid) for journald and log shippers."),
    ]

    public static var parser: Parser {
        Parser(commands: commandTypes.map { $0.spec }, globals: globalOptions)
    }

    /// Runs silo with `arguments` (without argv[0]) and returns the exit status.
    public static func main(arguments: [String], environment: [String: String]) -> Int32 {
        var log = Logger()
        do throws(SiloError) {
            let invocation = try parser.parse(arguments)
            switch invocation {
            case .version:
                print("silo \(version) (commit \(commit))")
                return 0
            case .manual:
                print(Help.manPage(commands: commandTypes.map { $0.spec }, globals: globalOptions), terminator: "")
                return 0
            case .help(let spec):
                print(spec.map { Help.command($0, globals: globalOptions) } ?? Help.overview(commands: commandTypes.map { $0.spec }, globals: globalOptions), terminator: "")
                return 0
            case .run(let spec, let parsed):
                if parsed.flag("--quiet") { log.level = .error }
                if let f = parsed.value("--log-format") {
                    guard let format = Logger.Format(rawValue: f) else { throw .usage("--log-format '\(displayable(f))' is not a log format; expected text or json") }
                    log.format = format
                }
                let context = Context(environment: environment, rootFlag: parsed.value("--root"), log: log)
                guard let type = commandTypes.first(where: { $0.spec.name == spec.name }) else { return ExitCode.usage }
                let command = try type.init(parsed)
                return try command.run(context)
            }
        } catch {
            log.error(error.message)
            return error.exitCode
        }
    }
}

/// Help text, generated from the same specs the parser uses (and, later, the man page).
public enum Help {
    public static func overview(commands: [CommandSpec], globals: [OptionSpec]) -> String {
        var out = """
        silo \(SiloCLI.version): one isolated cargo cache per CI job, keyed by PR or ref, held by a lease.

        Usage: silo [--root DIR] <command> [options]

        Commands:

        """
        let width = (commands.map(\.name.count).max() ?? 0) + 2
        for c in commands { out += "  " + c.name.padding(toLength: width, withPad: " ", startingAt: 0) + c.summary + "\n" }
        out += "\nGlobal options:\n" + options(globals + [OptionSpec("--help", help: "Show help (also: silo <command> --help)."), OptionSpec("--version", help: "Show the version.")])
        out += "\nExit status: the job's own status for exec (128+N if killed by signal N); 1 on error; 2 on a usage error; 75 when a key stayed busy past --wait; 126/127 when the command cannot run or is not found.\n"
        return out
    }

    public static func command(_ spec: CommandSpec, globals: [OptionSpec]) -> String {
        var usage = "silo \(spec.name)"
        if !spec.options.isEmpty { usage += " [options]" }
        for p in spec.positionals { usage += p.hasSuffix("?") ? " [\(p.dropLast())]" : " \(p)" }
        if let t = spec.trailing { usage += " [--] \(t)" }
        var out = "\(spec.summary)\n\nUsage: \(usage)\n"
        if !spec.options.isEmpty { out += "\nOptions:\n" + options(spec.options) }
        out += "\nGlobal options:\n" + options(globals)
        if !spec.discussion.isEmpty { out += "\n" + spec.discussion + "\n" }
        return out
    }

    /// silo(1) in roff, from the same specs as --help: `silo --man > silo.1` (what `make install` does).
    public static func manPage(commands: [CommandSpec], globals: [OptionSpec]) -> String {
        func roff(_ text: String) -> String {
            text.replacingOccurrences(of: "\\", with: "\\e").replacingOccurrences(of: "-", with: "\\-")
                .split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.hasPrefix(".") || $0.hasPrefix("'") ? "\\&" + $0 : String($0) }.joined(separator: "\n")
        }
        func optionList(_ specs: [OptionSpec]) -> String {
            specs.map { ".TP\n.B \(roff($0.name))\($0.value.map { " \\fI\(roff($0))\\fR" } ?? "")\n\(roff($0.help))\n" }.joined()
        }
        var out = ".TH SILO 1 \"\" \"silo \(SiloCLI.version)\" \"User Commands\"\n"
        out += ".SH NAME\nsilo \\- one isolated cargo cache per CI job, keyed by PR or ref, held by a lease\n"
        out += ".SH SYNOPSIS\n.B silo\n[\\fB\\-\\-root\\fR \\fIDIR\\fR] \\fIcommand\\fR [\\fIoptions\\fR]\n"
        out += ".SH GLOBAL OPTIONS\n" + optionList(globals)
        out += ".SH COMMANDS\n"
        for c in commands {
            out += ".SS \(roff(c.name))\n\(roff(c.summary))\n"
            if !c.options.isEmpty { out += optionList(c.options) }
            if !c.discussion.isEmpty { out += ".PP\n\(roff(c.discussion.replacingOccurrences(of: "\n", with: " ")))\n" }
        }
        out += ".SH EXIT STATUS\nThe job's own status for exec (128+N if killed by signal N); 1 on error; 2 on a usage error; 75 when a key stayed busy past \\-\\-wait; 126/127 when the command cannot run or is not found.\n"
        return out
    }

    static func options(_ specs: [OptionSpec]) -> String {
        let labels = specs.map { spec in spec.value.map { "\(spec.name) \($0)" } ?? spec.name }
        let width = (labels.map(\.count).max() ?? 0) + 2
        return zip(labels, specs).map { "  " + $0.padding(toLength: width, withPad: " ", startingAt: 0) + $1.help + "\n" }.joined()
    }
}
