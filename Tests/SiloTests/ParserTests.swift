// The one argument parser, through `SiloCLI.parser` (the specs the real commands declare) and
// through `SiloCLI.main`: what each command line means, and the one-line usage error (exit 2)
// for each way of getting it wrong.

import Foundation
import Testing
@testable import SiloCLI
@testable import SiloCore

/// The usage error `body` throws, or nil when it returns.
/// (Untyped, because closures written inside a macro do not get typed throws inferred.)
private func parseError<T>(_ body: () throws -> T) -> SiloError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error as? SiloError
    }
}

private func parse(_ argv: [String]) throws(SiloError) -> Invocation {
    try SiloCLI.parser.parse(argv)
}

/// The command and arguments `argv` runs, or a test failure.
private func parseRun(_ argv: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> (CommandSpec, ParsedArguments) {
    let invocation: Invocation
    do {
        invocation = try parse(argv)
    } catch {
        Issue.record("\(argv) was refused: \(error.message)", sourceLocation: sourceLocation)
        throw error
    }
    guard case .run(let spec, let parsed) = invocation else {
        Issue.record("\(argv) did not parse as a command to run: \(invocation)", sourceLocation: sourceLocation)
        throw SiloError("not a run")
    }
    return (spec, parsed)
}

/// The error `argv` gives, from the parser or from the command's own checks of its values, exactly
/// as `SiloCLI.main` would report it (without running anything).
private func usageError(_ argv: [String]) -> SiloError? {
    parseError { () throws -> Void in
        guard case .run(let spec, let parsed) = try parse(argv) else { return }
        guard let type = SiloCLI.commandTypes.first(where: { $0.spec.name == spec.name }) else { return }
        _ = try type.init(parsed)
    }
}

/// A command line whose test-case label stays readable when its words are 10,000 characters long.
struct LongArgv: Sendable, CustomTestStringConvertible {
    let words: [String]
    init(_ words: [String]) { self.words = words }
    var testDescription: String {
        "[" + words.map { $0.count > 24 ? "\($0.prefix(12).debugDescription)...(\($0.count) chars)" : $0.debugDescription }.joined(separator: ", ") + "]"
    }
}

private func isOneLine(_ message: String) -> Bool {
    !message.isEmpty && !message.contains(where: { $0.isNewline }) && message.count < 300
}

/// An environment in which nothing could accidentally be found: no GITHUB_*, a root in /nonexistent.
private let inertEnvironment = ["HOME": "/nonexistent", "SILO_ROOT": "/nonexistent/silo-root"]

@Suite("argument parser")
struct ParserTests {
    // MARK: - Usage errors: exit 2, one line, naming the offender and what was expected

    @Test("usage errors", arguments: [
        // Unknown command, with the closest suggested.
        (["exce"], ["'exce'", "did you mean 'exec'"]),
        (["sl"], ["'sl'", "did you mean 'ls'"]),
        (["kye"], ["'kye'", "did you mean 'key'"]),
        (["--root", "/r", "exce", "cargo"], ["'exce'", "did you mean 'exec'"]),
        (["frobnicate"], ["unknown command 'frobnicate'"]),
        (["help", "exce"], ["'exce'", "did you mean 'exec'"]),
        ([], ["missing command", "exec", "key", "ls"]),
        (["--root", "/r"], ["missing command"]),
        // Unknown option, with the closest suggested.
        (["exec", "--kye", "k", "cargo"], ["'--kye'", "did you mean '--key'"]),
        (["exec", "--shar", "private", "cargo"], ["'--shar'", "did you mean '--share'"]),
        (["exec", "--kye=k", "cargo"], ["'--kye'", "did you mean '--key'"]),
        (["key", "--shar", "3"], ["'--shar'", "did you mean '--shard'"]),
        (["ls", "--jsn"], ["'--jsn'", "did you mean '--json'"]),
        (["exec", "--roto", "/r", "cargo"], ["'--roto'", "did you mean '--root'"]),
        (["exec", "--frobnicate", "cargo"], ["unknown option '--frobnicate'", "silo exec"]),
        (["--kye", "exec"], ["unknown option '--kye'"]),
        (["key", "--key", "k"], ["unknown option '--key'", "silo key"]),
        (["exec", "-k", "x", "cargo"], ["unknown option '-k'"]),
        // A value missing at the end names the option and its placeholder.
        (["exec", "--key"], ["'--key'", "KEY"]),
        (["exec", "--wait"], ["'--wait'", "DURATION"]),
        (["key", "--shard"], ["'--shard'", "S"]),
        (["--root"], ["'--root'", "DIR"]),
        (["ls", "--root"], ["'--root'", "DIR"]),
        // A flag given a value.
        (["exec", "--no-target=1", "cargo"], ["'--no-target'", "takes no value", "'1'"]),
        (["exec", "--with-credentials=yes", "cargo"], ["'--with-credentials'", "takes no value", "'yes'"]),
        (["ls", "--json=true"], ["'--json'", "takes no value"]),
        (["--quiet=1", "ls"], ["'--quiet'", "takes no value"]),
        // A value option given twice.
        (["exec", "--key", "a", "--key", "b", "cargo"], ["'--key'", "twice", "'a'", "'b'"]),
        (["exec", "--key=a", "--key", "a", "cargo"], ["'--key'", "twice"]),
        (["exec", "--share", "locked", "--share", "shared", "cargo"], ["'--share'", "twice"]),
        (["--root", "/a", "ls", "--root", "/b"], ["'--root'", "twice", "'/a'", "'/b'"]),
        (["key", "--shard", "1", "--shard=2"], ["'--shard'", "twice"]),
        // --wait and --share values: the value and the expected form.
        (["exec", "--key", "k", "--wait", "5x", "cargo"], ["--wait", "'5x'", "duration", "90s"]),
        (["exec", "--key", "k", "--wait", "-1", "cargo"], ["--wait", "'-1'", "duration", "90s"]),
        (["exec", "--key", "k", "--wait", "", "cargo"], ["--wait", "''", "duration", "90s"]),
        (["exec", "--key", "k", "--wait=", "cargo"], ["--wait", "''", "duration"]),
        (["exec", "--key", "k", "--wait", "s", "cargo"], ["--wait", "'s'", "duration"]),
        (["exec", "--key", "k", "--wait", "+5s", "cargo"], ["--wait", "'+5s'", "duration"]),
        (["exec", "--key", "k", "--wait", "nan", "cargo"], ["--wait", "'nan'", "duration"]),
        (["exec", "--key", "k", "--wait", "inf", "cargo"], ["--wait", "'inf'", "duration"]),
        (["exec", "--key", "k", "--wait", "5 m", "cargo"], ["--wait", "'5 m'", "duration"]),
        (["exec", "--key", "k", "--wait", "10mins", "cargo"], ["--wait", "'10mins'", "duration"]),
        (["exec", "--key", "k", "--share", "exclusive", "cargo"], ["--share", "'exclusive'", "locked, private or shared"]),
        (["exec", "--key", "k", "--share", "", "cargo"], ["--share", "''", "locked, private or shared"]),
        (["exec", "--key", "k", "--share=Locked", "cargo"], ["--share", "'Locked'", "locked, private or shared"]),
        (["exec", "--key", "k", "--share", "private", "--wait", "5s", "cargo"], ["--wait", "locked"]),
        // exec needs a command.
        (["exec"], ["needs a command"]),
        (["exec", "--key", "k"], ["needs a command"]),
        (["exec", "--key", "k", "--"], ["needs a command"]),
        (["exec", "--key", "k", "--no-target"], ["needs a command"]),
        // Positionals and `--` where a command takes none.
        (["key", "extra"], ["unexpected argument 'extra'", "silo key"]),
        (["ls", "pr-1"], ["unexpected argument 'pr-1'", "silo ls"]),
        (["key", "--", "cargo"], ["'--'", "silo key"]),
        (["ls", "--"], ["'--'", "silo ls"]),
    ] as [([String], [String])])
    func usageErrors(argv: [String], fragments: [String]) throws {
        let error = try #require(usageError(argv), "\(argv) was accepted")
        #expect(error.exitCode == ExitCode.usage, "\(argv): \(error.message)")
        #expect(isOneLine(error.message), "\(argv): \(error.message.debugDescription)")
        for fragment in fragments {
            #expect(error.message.contains(fragment), "\(argv): '\(error.message)' lacks \(fragment)")
        }
        // And the command line as a whole exits 2 (nothing here gets as far as running anything).
        #expect(SiloCLI.main(arguments: argv, environment: inertEnvironment) == ExitCode.usage)
    }

    @Test("suggestions only when something is close", arguments: ["xyzzy", "frobnicate", "q", "l", "zz"])
    func noFarFetchedSuggestion(_ word: String) throws {
        let error = try #require(usageError([word]))
        #expect(!error.message.contains("did you mean"), "\(error.message)")
        let option = try #require(usageError(["exec", "--" + word, "cargo"]))
        #expect(!option.message.contains("did you mean"), "\(option.message)")
    }

    @Test("the suggestion is the closest candidate", arguments: [
        ("exe", "exec"), ("exec1", "exec"), ("xec", "exec"), ("eexc", "exec"), ("ke", "key"), ("lss", "ls"), ("ks", "ls"),
    ])
    func closestCommand(_ typo: String, expected: String) throws {
        let error = try #require(usageError([typo]))
        #expect(error.message.contains("did you mean '\(expected)'"), "\(error.message)")
    }

    @Test("user-supplied text in usage errors stays on one line and short", arguments: [
        ["exec\nrm -rf /"],
        ["\u{1B}]0;pwned\u{7}"],
        ["exec\u{2028}x"],
        [String(repeating: "x", count: 10_000)],
        ["exec", "--" + String(repeating: "k", count: 10_000), "cargo"],
        ["exec", "--key\nx", "cargo"],
        ["exec", "--no-target=\n", "cargo"],
        ["exec", "--no-target=" + String(repeating: "1", count: 10_000), "cargo"],
        ["exec", "--key", "a\nb", "--key", "c", "cargo"],
        ["exec", "--key", String(repeating: "a", count: 10_000), "--key", "c", "cargo"],
        ["key", "x\ny"],
        ["ls", String(repeating: "p", count: 10_000)],
        ["help", "exec\n"],
    ].map(LongArgv.init))
    func hostileText(_ argv: LongArgv) throws {
        let error = try #require(usageError(argv.words))
        #expect(error.exitCode == ExitCode.usage)
        #expect(isOneLine(error.message), "\(error.message.prefix(200).debugDescription)")
    }

    @Test("exec's own value checks (--wait, --share) quote the value on one line too", arguments: [
        ["exec", "--key", "k", "--wait", "5\nx", "cargo"],
        ["exec", "--key", "k", "--share", "locked\nshared", "cargo"],
        ["exec", "--key", "k", "--wait", String(repeating: "9", count: 10_000) + "x", "cargo"],
    ].map(LongArgv.init))
    func execValuesOnOneLine(_ argv: LongArgv) throws {
        let error = try #require(usageError(argv.words))
        #expect(error.exitCode == ExitCode.usage)
        #expect(isOneLine(error.message), "\(error.message.prefix(200).debugDescription)")
    }

    // MARK: - What command lines mean

    @Test("exec: options before the command, the command verbatim after them")
    func execTrailing() throws {
        let (spec, parsed) = try parseRun(["exec", "--key", "k", "cargo", "build", "--release"])
        #expect(spec.name == "exec")
        #expect(parsed.value("--key") == "k")
        #expect(parsed.trailing == ["cargo", "build", "--release"])
        #expect(parsed.positionals.isEmpty)
    }

    @Test("exec: `--` ends silo's options; --help after it belongs to the command")
    func execDoubleDash() throws {
        let (_, parsed) = try parseRun(["exec", "--key", "k", "--", "cargo", "--help"])
        #expect(parsed.value("--key") == "k")
        #expect(parsed.trailing == ["cargo", "--help"])

        // --help after the command (no `--`) is the command's too.
        let (_, bare) = try parseRun(["exec", "--key", "k", "cargo", "--help"])
        #expect(bare.trailing == ["cargo", "--help"])

        // Options that look like silo's, after the command, are the command's.
        let (_, look) = try parseRun(["exec", "--key", "k", "cargo", "--key", "x", "--no-target", "--", "--version"])
        #expect(look.value("--key") == "k")
        #expect(!look.flag("--no-target"))
        #expect(look.trailing == ["cargo", "--key", "x", "--no-target", "--", "--version"])

        // Only the first `--` is silo's.
        let (_, twice) = try parseRun(["exec", "--key", "k", "--", "--", "x"])
        #expect(twice.trailing == ["--", "x"])

        // A command whose name starts with a dash needs `--`.
        let (_, dashed) = try parseRun(["exec", "--", "-weird-tool", "a"])
        #expect(dashed.trailing == ["-weird-tool", "a"])
        #expect(dashed.value("--key") == nil)

        // `-` alone is a command word (stdin), not an option.
        let (_, stdin) = try parseRun(["exec", "--key", "k", "-"])
        #expect(stdin.trailing == ["-"])
    }

    @Test("exec: every option and flag")
    func execAllOptions() throws {
        let argv = ["exec", "--key", "pr-1", "--share", "private", "--cargo-config", "/etc/cargo.toml",
                    "--with-credentials", "--no-target", "--", "cargo", "test"]
        let (_, parsed) = try parseRun(argv)
        #expect(parsed.value("--key") == "pr-1")
        #expect(parsed.value("--share") == "private")
        #expect(parsed.value("--cargo-config") == "/etc/cargo.toml")
        #expect(parsed.flag("--with-credentials"))
        #expect(parsed.flag("--no-target"))
        #expect(parsed.trailing == ["cargo", "test"])

        let command = try ExecCommand(parsed)
        #expect(command.key == "pr-1")
        #expect(command.mode == .private)
        #expect(command.wait == nil)
        #expect(command.provision.withCredentials)
        #expect(command.noTarget)
        #expect(command.command == ["cargo", "test"])
    }

    @Test("--wait durations", arguments: [
        ("90", 90.0), ("90s", 90), ("10m", 600), ("1.5h", 5400), ("2d", 172_800), ("1w", 604_800), ("0", 0), ("0.5s", 0.5),
    ])
    func waitDurations(_ text: String, seconds: Double) throws {
        let (_, parsed) = try parseRun(["exec", "--key", "k", "--wait", text, "cargo"])
        let command = try ExecCommand(parsed)
        #expect(command.wait == seconds)
        #expect(command.mode == .locked)
    }

    @Test("--share modes", arguments: ShareMode.allCases)
    func shareModes(_ mode: ShareMode) throws {
        let (_, parsed) = try parseRun(["exec", "--share", mode.rawValue, "cargo"])
        #expect(try ExecCommand(parsed).mode == mode)
        let (_, inline) = try parseRun(["exec", "--share=" + mode.rawValue, "cargo"])
        #expect(try ExecCommand(inline).mode == mode)
    }

    @Test("--key=value and --key value mean the same")
    func inlineValues() throws {
        let (_, inline) = try parseRun(["exec", "--key=pr-1031", "cargo"])
        let (_, separate) = try parseRun(["exec", "--key", "pr-1031", "cargo"])
        #expect(inline.value("--key") == "pr-1031")
        #expect(separate.value("--key") == "pr-1031")
        #expect(inline.trailing == separate.trailing)

        // Only the first `=` splits; the rest is the value.
        let (_, eq) = try parseRun(["exec", "--cargo-config=/tmp/a=b.toml", "cargo"])
        #expect(eq.value("--cargo-config") == "/tmp/a=b.toml")
        // An inline empty value is a value (refused later by what checks it), not a missing one.
        let (_, empty) = try parseRun(["exec", "--key=", "cargo"])
        #expect(empty.value("--key") == "")
        // A separate value is taken as it is, even when it starts with a dash.
        let (_, dash) = try parseRun(["key", "--shard", "-1"])
        #expect(dash.value("--shard") == "-1")
    }

    @Test("global --root before and after the command name", arguments: [
        ["--root", "/srv/silo", "ls"],
        ["ls", "--root", "/srv/silo"],
        ["--root=/srv/silo", "ls"],
        ["ls", "--root=/srv/silo"],
        ["--quiet", "--root", "/srv/silo", "ls", "--json"],
        ["ls", "--json", "--root", "/srv/silo", "--quiet"],
    ])
    func globalRoot(_ argv: [String]) throws {
        let (spec, parsed) = try parseRun(argv)
        #expect(spec.name == "ls")
        #expect(parsed.value("--root") == "/srv/silo")
        #expect(parsed.positionals.isEmpty)
        if argv.contains("--json") {
            #expect(parsed.flag("--json"))
            #expect(parsed.flag("--quiet"))
        }
    }

    @Test("global --root with exec, before the command name and among exec's options")
    func globalRootWithExec() throws {
        let (_, before) = try parseRun(["--root", "/r", "exec", "--key", "k", "cargo", "--root", "x"])
        #expect(before.value("--root") == "/r")
        #expect(before.trailing == ["cargo", "--root", "x"])
        let (_, after) = try parseRun(["exec", "--key", "k", "--root", "/r", "--", "cargo"])
        #expect(after.value("--root") == "/r")
        #expect(after.trailing == ["cargo"])
    }

    @Test("key --shard")
    func keyShard() throws {
        let (spec, parsed) = try parseRun(["key", "--shard", "3"])
        #expect(spec.name == "key")
        #expect(try KeyCommand(parsed).shard == "3")
        let (_, none) = try parseRun(["key"])
        #expect(try KeyCommand(none).shard == nil)
    }

    // MARK: - Help and version

    @Test("help for one command", arguments: [
        ["help", "exec"], ["exec", "--help"], ["exec", "-h"], ["exec", "--key", "k", "--help"], ["--root", "/r", "help", "exec"],
        ["--root", "/r", "exec", "--help"],
    ])
    func commandHelp(_ argv: [String]) throws {
        guard case .help(let spec?) = try parse(argv) else {
            Issue.record("\(argv) did not ask for help on a command")
            return
        }
        #expect(spec.name == "exec")
        let text = Help.command(spec, globals: SiloCLI.globalOptions)
        #expect(text.contains("Usage: silo exec [options] [--] COMMAND..."))
        for option in ["--key KEY", "--share MODE", "--wait DURATION", "--no-target", "--root DIR"] {
            #expect(text.contains(option), "help lacks \(option)")
        }
        #expect(SiloCLI.main(arguments: argv, environment: inertEnvironment) == 0)
    }

    @Test("help for every command", arguments: SiloCLI.commandTypes.map { $0.spec.name })
    func everyCommandHasHelp(_ name: String) throws {
        guard case .help(let spec?) = try parse(["help", name]) else {
            Issue.record("help \(name) did not give help")
            return
        }
        #expect(spec.name == name)
        guard case .help(let again?) = try parse([name, "--help"]) else {
            Issue.record("\(name) --help did not give help")
            return
        }
        #expect(again.name == name)
    }

    @Test("overview help", arguments: [["help"], ["--help"], ["-h"], ["--quiet", "--help"]])
    func overviewHelp(_ argv: [String]) throws {
        guard case .help(nil) = try parse(argv) else {
            Issue.record("\(argv) did not ask for the overview")
            return
        }
        let text = Help.overview(commands: SiloCLI.commandTypes.map { $0.spec }, globals: SiloCLI.globalOptions)
        for name in ["exec", "key", "ls", "--root DIR", "--version", "Exit status"] {
            #expect(text.contains(name), "overview lacks \(name)")
        }
        #expect(SiloCLI.main(arguments: argv, environment: inertEnvironment) == 0)
    }

    @Test("--version", arguments: [["--version"], ["--quiet", "--version"], ["--root", "/r", "--version"]])
    func version(_ argv: [String]) throws {
        guard case .version = try parse(argv) else {
            Issue.record("\(argv) did not ask for the version")
            return
        }
        #expect(SiloCLI.main(arguments: argv, environment: inertEnvironment) == 0)
    }

    @Test("help and version words after exec's command belong to the command")
    func helpWordsInTrailing() throws {
        let (_, parsed) = try parseRun(["exec", "--key", "k", "help", "--version"])
        #expect(parsed.trailing == ["help", "--version"])
    }

    // MARK: - Edit distance

    @Test("edit distance", arguments: [
        ("", "", 0), ("", "abc", 3), ("abc", "", 3), ("exec", "exec", 0), ("kitten", "sitting", 3), ("q", "ls", 2),
        // Adjacent transpositions are one edit.
        ("exce", "exec", 1), ("sl", "ls", 1), ("--kye", "--key", 1), ("--roto", "--root", 1), ("--shar", "--share", 1),
    ])
    func distance(_ a: String, _ b: String, expected: Int) {
        #expect(editDistance(a, b) == expected)
        #expect(editDistance(b, a) == expected)
    }
}
