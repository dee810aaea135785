import SiloCore
import Foundation

struct PromoteCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "promote",
        summary: "Publish a trusted key's CARGO_HOME as a read-only base that new caches start from.",
        options: [
            OptionSpec("--key", value: "KEY", help: "The key to promote (required): a trusted one, like main."),
            OptionSpec("--as", value: "NAME", help: "The base's name. Default: default (what silo exec starts new caches from)."),
            OptionSpec("--slot", value: "N", help: "The key's slot to promote. Default: 1."),
            OptionSpec("--with-target", help: "Also publish the key's target dir (copied or reflinked into new caches, never linked)."),
            OptionSpec("--trusted", value: "PATTERN", help: "A key glob that may be promoted; replaces the default main, master, release-*. pr-* and mq-* never are.", repeatable: true),
            OptionSpec("--wait", value: "DURATION", help: "Wait this long for a job running in the key to end. Default: do not wait."),
            OptionSpec("--no-verify", help: "Skip the check of the key's cache (silo verify) before publishing it."),
            OptionSpec("--json", help: "Print what was published as JSON."),
        ],
        discussion: """
        The base holds the key's registry/ (index, .crate files, sources), git/ and .global-cache, read-only and
        owned by the promoting user; never its config.toml, credentials or bin/. It is built aside and renamed
        into place as the next generation of NAME; caches seeded from an older generation keep it until reap
        finds none left. Exit: 0 published, 2 bad input or untrusted key, 75 the key is busy.
        """
    )

    var key: String
    var name: String
    var slot: Int
    var withTarget: Bool
    var trusted: [String]
    var wait: Double?
    var verify: Bool
    var json: Bool

    init(_ args: ParsedArguments) throws(SiloError) {
        guard let key = args.value("--key") else { throw .usage("'silo promote' needs --key KEY, like: silo promote --key main") }
        self.key = key
        name = args.value("--as") ?? BaseChoice.defaultName
        slot = try parseSlot(args)
        withTarget = args.flag("--with-target")
        trusted = args.all("--trusted")
        wait = try args.value("--wait").map { w throws(SiloError) in try parseDuration(w, flag: "--wait") }
        verify = !args.flag("--no-verify")
        json = args.flag("--json")
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let key = try CacheKey(validating: self.key)
        let base: CacheKey
        do { base = try CacheKey(validating: name) } catch {
            throw .usage("--as '\(displayable(name))' is not a base name: \(error.message)")
        }
        var patterns: [KeyPattern] = []
        for t in trusted { patterns.append(try KeyPattern(validating: t, option: "--trusted")) }
        var request = PromoteRequest(key: key, name: base, trust: try TrustPolicy(patterns: patterns.isEmpty ? nil : patterns))
        request.slot = slot
        request.withTarget = withTarget
        request.wait = wait
        request.verify = verify
        let result = try Promoter(root: try context.root(), log: context.log).run(request)
        if json {
            print(try encodeJSON(result))
        } else {
            print("base \(result.base): \(result.files) files from key \(result.key) slot \(result.slot) by \(result.method) in \(String(format: "%.2f", result.seconds)) s")
        }
        return 0
    }
}
