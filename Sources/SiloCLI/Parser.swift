// The one argument parser. Commands describe themselves as data (`CommandSpec`); this file turns
// argv into `ParsedArguments` for one of them, or into a usage error that names the offender and
// suggests the closest valid spelling.

import SiloCore

public struct OptionSpec: Sendable {
    public let name: String
    /// Placeholder of the value (`KEY`, `DURATION`); nil for a flag that takes none.
    public let value: String?
    public let help: String
    public let repeatable: Bool

    public init(_ name: String, value: String? = nil, help: String, repeatable: Bool = false) {
        self.name = name
        self.value = value
        self.help = help
        self.repeatable = repeatable
    }
}

public struct CommandSpec: Sendable {
    public let name: String
    public let summary: String
    public let options: [OptionSpec]
    /// Names of positional arguments, in order (`LOGFILE`); `?` suffix marks optional ones.
    public let positionals: [String]
    /// When set, the first positional and everything after it (or everything after `--`) is one
    /// trailing command line, named by this placeholder.
    public let trailing: String?
    public let discussion: String

    public init(name: String, summary: String, options: [OptionSpec] = [], positionals: [String] = [], trailing: String? = nil, discussion: String = "") {
        self.name = name
        self.summary = summary
        self.options = options
        self.positionals = positionals
        self.trailing = trailing
        self.discussion = discussion
    }
}

public struct ParsedArguments: Sendable {
    public var values: [String: [String]] = [:]
    public var flags: Set<String> = []
    public var positionals: [String] = []
    public var trailing: [String] = []

    public func value(_ name: String) -> String? { values[name]?.last }
    public func all(_ name: String) -> [String] { values[name] ?? [] }
    public func flag(_ name: String) -> Bool { flags.contains(name) }
}

/// What the command line asks for.
public enum Invocation {
    case run(CommandSpec, ParsedArguments)
    case help(CommandSpec?)
    case version
    /// `--man`: the manual page, for `make install`.
    case manual
}

public struct Parser {
    public let commands: [CommandSpec]
    public let globals: [OptionSpec]

    public init(commands: [CommandSpec], globals: [OptionSpec]) {
        self.commands = commands
        self.globals = globals
    }

    public func parse(_ argv: [String]) throws(SiloError) -> Invocation {
        var parsed = ParsedArguments()
        var i = 0
        // Global options may come before the command name.
        var command: CommandSpec?
        while i < argv.count {
            let arg = argv[i]
            if arg == "--help" || arg == "-h" || arg == "help" {
                if arg == "help", i + 1 < argv.count { return .help(try lookup(argv[i + 1])) }
                return .help(nil)
            }
            if arg == "--version" { return .version }
            if arg == "--man" { return .manual }
            if arg.hasPrefix("-") {
                try consumeOption(argv, &i, options: globals, context: "silo", into: &parsed)
                continue
            }
            command = try lookup(arg)
            i += 1
            break
        }
        guard let command else { throw .usage("missing command; expected one of \(commands.map(\.name).joined(separator: ", ")) (see silo --help)") }
        let options = command.options + globals
        while i < argv.count {
            let arg = argv[i]
            if arg == "--" {
                guard command.trailing != nil else { throw .usage("'--' given but 'silo \(command.name)' takes no command to run") }
                parsed.trailing = Array(argv[(i + 1)...])
                break
            }
            if arg == "--help" || arg == "-h" { return .help(command) }
            if arg.hasPrefix("-") && arg != "-" {
                try consumeOption(argv, &i, options: options, context: "silo \(command.name)", into: &parsed)
                continue
            }
            if command.trailing != nil {
                parsed.trailing = Array(argv[i...])
                break
            }
            parsed.positionals.append(arg)
            i += 1
        }
        let required = command.positionals.filter { !$0.hasSuffix("?") }
        if parsed.positionals.count < required.count {
            throw .usage("'silo \(command.name)' needs \(required[parsed.positionals.count])")
        }
        if parsed.positionals.count > command.positionals.count {
            let extra = parsed.positionals[command.positionals.count]
            throw .usage("unexpected argument '\(shown(extra))' for 'silo \(command.name)'" + (command.positionals.isEmpty ? "; it takes none" : "; it takes \(command.positionals.joined(separator: " "))"))
        }
        return .run(command, parsed)
    }

    func lookup(_ name: String) throws(SiloError) -> CommandSpec {
        if let c = commands.first(where: { $0.name == name }) { return c }
        throw .usage("unknown command '\(shown(name))'" + suggestion(name, among: commands.map(\.name)) + " (see silo --help)")
    }

    func consumeOption(_ argv: [String], _ i: inout Int, options: [OptionSpec], context: String, into parsed: inout ParsedArguments) throws(SiloError) {
        let arg = argv[i]
        var name = arg
        var inline: String?
        if let eq = arg.firstIndex(of: "="), arg.hasPrefix("--") {
            name = String(arg[..<eq])
            inline = String(arg[arg.index(after: eq)...])
        }
        guard let spec = options.first(where: { $0.name == name }) else {
            throw .usage("unknown option '\(shown(name))' for '\(context)'" + suggestion(name, among: options.map(\.name)))
        }
        i += 1
        guard let placeholder = spec.value else {
            if let inline { throw .usage("option '\(name)' takes no value, but got '\(shown(inline))'") }
            parsed.flags.insert(name)
            return
        }
        let value: String
        if let inline {
            value = inline
        } else {
            guard i < argv.count else { throw .usage("option '\(name)' needs a value (\(placeholder))") }
            value = argv[i]
            i += 1
        }
        if parsed.values[name] != nil && !spec.repeatable {
            throw .usage("option '\(name)' given twice ('\(shown(parsed.values[name]![0]))' and '\(shown(value))'); expected it once")
        }
        parsed.values[name, default: []].append(value)
    }

    /// "; did you mean 'X'?" for the closest candidate within a small edit distance, else "".
    /// A candidate that shares nothing with the word (as many edits as the word has characters,
    /// like 'q' -> 'ls') is no suggestion.
    func suggestion(_ word: String, among candidates: [String]) -> String {
        let scored = candidates.map { ($0, editDistance(word, $0)) }.sorted { $0.1 < $1.1 }
        guard let best = scored.first else { return "" }
        let limit = max(2, word.count / 3)
        if (best.1 <= limit && best.1 < word.count) || (word.count >= 3 && best.0.hasPrefix(word)) { return "; did you mean '\(best.0)'?" }
        return ""
    }

    /// User-supplied text as quoted in a message: cut short, nothing that breaks the line.
    func shown(_ text: String) -> String { CacheKey.preview(text) }
}

/// Edit distance for suggestions: Levenshtein plus transposition of two adjacent characters as one
/// edit (optimal string alignment), so that `sl` is one edit from `ls`.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var beforePrevious = [Int](repeating: 0, count: b.count + 1)
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                current[j] = min(current[j], beforePrevious[j - 2] + 1)
            }
        }
        beforePrevious = previous
        previous = current
    }
    return previous[b.count]
}
