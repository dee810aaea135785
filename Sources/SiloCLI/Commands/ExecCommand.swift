import SiloCore
import Foundation

struct ExecCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "exec",
        summary: "Run a command with CARGO_HOME and CARGO_TARGET_DIR in the key's own cache, under a lease.",
        options: [
            OptionSpec("--key", value: "KEY", help: "The cache key ([A-Za-z0-9._-], 1-64 chars). Default: derived from the CI environment like 'silo key'."),
            OptionSpec("--share", value: "MODE", help: "When the key is busy: locked (wait; default), private (use a free slot of the key), shared (run beside the holder, same uid)."),
            OptionSpec("--wait", value: "DURATION", help: "With locked: give up after this long (90s, 10m) and exit 75. Default: wait as long as it takes."),
            OptionSpec("--cargo-config", value: "FILE", help: "Cargo config to carry into the cache. Default: config.toml of $CARGO_HOME, else of ~/.cargo."),
            OptionSpec("--with-credentials", help: "Also carry credentials.toml (otherwise it is kept out of the cache)."),
            OptionSpec("--no-target", help: "Leave CARGO_TARGET_DIR alone."),
            OptionSpec("--from", value: "BASE", help: "A new cache starts from this base (see 'silo promote'); 'none' starts cold. Default: the base 'default' when there is one."),
            OptionSpec("--seed", value: "METHOD", help: "How a new cache gets the base's files: reflink, hardlink or copy. Default: the safest that applies."),
            OptionSpec("--user", value: "UID[:GID]", help: "Run the job as this user (a name or a uid; silo must be root). New caches are owned by it."),
        ],
        trailing: "COMMAND...",
        discussion: """
        The command runs in its own process group; SIGINT, SIGTERM and SIGHUP are forwarded to it. silo
        exits with its status (128+N when killed by signal N), 127 when it is not found. Its environment
        gets CARGO_HOME, CARGO_TARGET_DIR, SILO_KEY, SILO_SLOT, SILO_DIR and SILO_ROOT.
        If silo itself is killed, the lease stays held by the job's processes until they end.
        """
    )

    var key: String?
    var mode: ShareMode
    var wait: Double?
    var cargoConfig: String?
    var withCredentials: Bool
    var noTarget: Bool
    var command: [String]
    var from: BaseChoice
    var seed: SeedMethod?
    var user: (uid: UInt32, gid: UInt32)?

    init(_ args: ParsedArguments) throws(SiloError) {
        key = args.value("--key")
        let share = args.value("--share") ?? "locked"
        guard let mode = ShareMode(rawValue: share) else {
            throw .usage("--share '\(displayable(share))' is not a share mode; expected locked, private or shared")
        }
        self.mode = mode
        if let w = args.value("--wait") { wait = try parseDuration(w, flag: "--wait") } else { wait = nil }
        if wait != nil && mode != .locked {
            throw .usage("--wait applies to --share locked only (got --share \(mode.rawValue)); private and shared never wait for a locked holder")
        }
        cargoConfig = args.value("--cargo-config")
        withCredentials = args.flag("--with-credentials")
        noTarget = args.flag("--no-target")
        command = args.trailing
        switch args.value("--from") {
        case nil: from = .automatic
        case "none"?: from = .none
        case let name?:
            do { from = .named(try CacheKey(validating: name)) } catch {
                throw .usage("--from '\(displayable(name))' is not a base name: \(error.message); expected a base name or 'none'")
            }
        }
        if let m = args.value("--seed") {
            guard let method = SeedMethod(rawValue: m) else { throw .usage("--seed '\(displayable(m))' is not a seeding method; expected reflink, hardlink or copy") }
            seed = method
        } else { seed = nil }
        user = try args.value("--user").map { u throws(SiloError) in try parseUser(u, flag: "--user") }
        if command.isEmpty { throw .usage("'silo exec' needs a command to run, like: silo exec --key pr-1 -- cargo build") }
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let key: CacheKey
        if let k = self.key { key = try CacheKey(validating: k) } else { key = try KeyCommand.derive(environment: context.environment, shard: nil) }
        var request = ExecRequest(key: key, command: command, environment: context.environment)
        request.mode = mode
        request.wait = wait
        request.cargoConfig = cargoConfig
        request.withCredentials = withCredentials
        request.setTargetDir = !noTarget
        request.from = from
        request.seedMethod = seed
        request.user = user
        return try Executor(root: try context.root(), log: context.log).run(request)
    }
}
