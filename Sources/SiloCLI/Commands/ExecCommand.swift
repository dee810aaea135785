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
            OptionSpec("--no-target", help: "Leave CARGO_TARGET_DIR alone."),
        ] + ProvisionOptions.specs,
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
    var noTarget: Bool
    var command: [String]
    var provision: ProvisionOptions

    init(_ args: ParsedArguments) throws(SiloError) {
        key = args.value("--key")
        mode = try parseShareMode(args)
        if let w = args.value("--wait") { wait = try parseDuration(w, flag: "--wait") } else { wait = nil }
        if wait != nil && mode != .locked {
            throw .usage("--wait applies to --share locked only (got --share \(mode.rawValue)); private and shared never wait for a locked holder")
        }
        provision = try ProvisionOptions(args)
        noTarget = args.flag("--no-target")
        command = args.trailing
        if command.isEmpty { throw .usage("'silo exec' needs a command to run, like: silo exec --key pr-1 -- cargo build") }
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let key = try resolveKey(self.key, environment: context.environment)
        var request = ExecRequest(key: key, command: command, environment: context.environment)
        request.mode = mode
        request.wait = wait
        request.cargoConfig = provision.cargoConfig
        request.withCredentials = provision.withCredentials
        request.setTargetDir = !noTarget
        request.from = provision.from
        request.seedMethod = provision.seed
        request.user = provision.user
        return try Executor(root: try context.root(), log: context.log).run(request)
    }
}
