// The commands that make a key's cache ready for a job silo does not run itself: a container
// (`mount`), a bare-metal job (`env`), a GitHub runner's job (`hook`). Each prepares the cache under
// a lease -- a recorded one with --holder, so that reap leaves it alone until released -- and hands
// the job its directories.

import SiloCore
import SiloSystem
import Foundation

/// --holder and --ttl, for the commands where a recorded lease is optional.
struct RecordedLeaseOptions: Sendable {
    static let specs: [OptionSpec] = [
        OptionSpec("--holder", value: "ID", help: "Also take a recorded lease for this holder (see 'silo lease'), so reap keeps off until it is released."),
        OptionSpec("--ttl", value: "DURATION", help: "With --holder: the lease runs out after this long. Required with --holder."),
        OptionSpec("--share", value: "MODE", help: "locked (default), private or shared, as for silo exec."),
        OptionSpec("--wait", value: "DURATION", help: "Give up on a busy key after this long and exit 75. Default: wait as long as it takes."),
    ]
    var holder: HolderID?
    var ttl: Double?
    var mode: ShareMode
    var wait: Double?

    init(_ args: ParsedArguments, defaultMode: ShareMode = .locked, defaultTTL: Double? = nil) throws(SiloError) {
        holder = try args.value("--holder").map { h throws(SiloError) in try HolderID(validating: h) }
        ttl = try args.value("--ttl").map { t throws(SiloError) in try parseDuration(t, flag: "--ttl") } ?? defaultTTL
        if holder != nil && ttl == nil { throw .usage("--holder needs --ttl DURATION (like 2h): a lease nobody releases must run out") }
        if let ttl, ttl <= 0 { throw .usage("--ttl must be longer than 0; expected a duration like 2h") }
        mode = try parseShareMode(args, default: defaultMode)
        wait = try args.value("--wait").map { w throws(SiloError) in try parseDuration(w, flag: "--wait") }
    }
}

/// The user a job runs as when none is named: the one who ran silo (SUDO_UID under sudo).
func invokingUser(_ env: [String: String]) -> (uid: UInt32, gid: UInt32) {
    let uid = VerifyCommand.invokingUID(env)
    if Identity.effectiveUID == 0, let s = env["SUDO_GID"], let g = UInt32(s) { return (uid, g) }
    return (uid, uid == Identity.realUID ? Identity.realGID : (Identity.primaryGroup(of: uid) ?? uid))
}

/// A shell word: single-quoted unless it is plainly safe.
func shellQuoted(_ s: String) -> String {
    if !s.isEmpty && s.unicodeScalars.allSatisfy({ CacheKey.isAllowed($0) || "/:=,@+%".unicodeScalars.contains($0) }) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// Appends `NAME=value` lines to the file $GITHUB_ENV names (the runner reads them into the job's
/// environment for its next steps).
func appendToGitHubEnv(_ vars: [(String, String)], environment: [String: String]) throws(SiloError) {
    guard let path = environment["GITHUB_ENV"], !path.isEmpty else {
        throw SiloError("GITHUB_ENV is not set; --github (and silo hook) write the job's variables there, so run it inside a GitHub Actions job or runner hook")
    }
    for (name, value) in vars where value.contains("\n") {
        throw SiloError("\(name) '\(displayable(value))' contains a newline; it cannot go into GITHUB_ENV as NAME=value")
    }
    do {
        let fd = try FileDescriptor.open(path, [.writeOnly, .append, .create, .closeOnExec], mode: 0o644)
        defer { fd.close() }
        try fd.writeAll(vars.map { "\($0.0)=\($0.1)\n" }.joined())
    } catch {
        throw SiloError("cannot append to GITHUB_ENV \(path): \(error)")
    }
}

func jobVariables(_ a: Attachment) -> [(String, String)] {
    var vars = [("CARGO_HOME", a.home), ("CARGO_TARGET_DIR", a.target), ("SILO_KEY", a.key), ("SILO_SLOT", String(a.slot))]
    if let h = a.holder { vars.append(("SILO_HOLDER", h)) }
    return vars
}

struct EnvCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "env",
        summary: "Make the key's cache ready and print the variables a bare-metal job needs (or append them to $GITHUB_ENV).",
        options: [
            OptionSpec("--key", value: "KEY", help: "The cache key. Default: derived from the CI environment like 'silo key'."),
            OptionSpec("--github", help: "Append NAME=value lines to $GITHUB_ENV instead of printing export lines."),
        ] + RecordedLeaseOptions.specs + ProvisionOptions.specs,
        discussion: """
        Prints export lines for CARGO_HOME, CARGO_TARGET_DIR, SILO_KEY and SILO_SLOT (and SILO_HOLDER), for
        eval "$(silo env --key K)". Without --holder nothing holds the cache once silo exits: take a recorded
        lease (--holder, --ttl) for a job that outlives this command, and release it at the end.
        """
    )

    var key: String?
    var github: Bool
    var lease: RecordedLeaseOptions
    var provision: ProvisionOptions

    init(_ args: ParsedArguments) throws(SiloError) {
        key = args.value("--key")
        github = args.flag("--github")
        lease = try RecordedLeaseOptions(args)
        provision = try ProvisionOptions(args)
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let key = try resolveKey(self.key, environment: context.environment)
        if github, context.environment["GITHUB_ENV"]?.isEmpty ?? true { try appendToGitHubEnv([], environment: context.environment) }
        let a = try Provisioner(root: try context.root(), log: context.log)
            .attach(provision.request(key: key, environment: context.environment), mode: lease.mode, wait: lease.wait, holder: lease.holder, ttl: lease.ttl)
        if github {
            try appendToGitHubEnv(jobVariables(a), environment: context.environment)
        } else {
            for (name, value) in jobVariables(a) { print("export \(name)=\(shellQuoted(value))") }
        }
        return 0
    }
}

struct MountCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "mount",
        summary: "Make the key's cache ready and print the docker arguments that mount it into a container.",
        options: [
            OptionSpec("--key", value: "KEY", help: "The cache key. Default: derived from the CI environment like 'silo key'."),
            OptionSpec("--format", value: "FORMAT", help: "docker (default): -v/-e/--user arguments on one line; json: the same as data."),
            OptionSpec("--home-at", value: "PATH", help: "Where CARGO_HOME is inside the container. Default: /cargo-home."),
            OptionSpec("--target-at", value: "PATH", help: "Where CARGO_TARGET_DIR is inside the container. Default: /cargo-target."),
        ] + RecordedLeaseOptions.specs + ProvisionOptions.specs,
        discussion: """
        The whole CARGO_HOME is mounted, never registry/ alone: cargo's locks live beside the registry, and a
        container that mounts only registry/ has a private lock over shared data. The mount sources are made
        beforehand, owned by --user (default: the invoking user), because docker makes a missing source as
        root. The container runs as --user: pass the printed --user on, or files it writes become root's
        (then silo fix-owner). Use it as: docker run $(silo mount --key K) IMAGE cargo build
        """
    )

    var key: String?
    var format: String
    var homeAt: String
    var targetAt: String
    var lease: RecordedLeaseOptions
    var provision: ProvisionOptions

    init(_ args: ParsedArguments) throws(SiloError) {
        key = args.value("--key")
        format = args.value("--format") ?? "docker"
        guard ["docker", "json"].contains(format) else { throw .usage("--format '\(displayable(format))' is not a format; expected docker or json") }
        homeAt = args.value("--home-at") ?? "/cargo-home"
        targetAt = args.value("--target-at") ?? "/cargo-target"
        for (flag, path) in [("--home-at", homeAt), ("--target-at", targetAt)] {
            guard path.hasPrefix("/"), !path.contains(":"), !path.contains(","), path.split(separator: "/").allSatisfy({ $0 != ".." }) else {
                throw .usage("\(flag) '\(displayable(path))' is not a container path; expected an absolute path without ':', ',' or '..', like /cargo-home")
            }
        }
        if homeAt == targetAt || targetAt.hasPrefix(homeAt + "/") || homeAt.hasPrefix(targetAt + "/") {
            throw .usage("--home-at '\(homeAt)' and --target-at '\(targetAt)' overlap; expected two separate directories")
        }
        lease = try RecordedLeaseOptions(args)
        provision = try ProvisionOptions(args)
    }

    struct Mount: Encodable {
        var key: String
        var slot: Int
        var home: String
        var target: String
        var home_at: String
        var target_at: String
        var user: String
        var holder: String?
        var expires: Double?
        var docker_args: [String]
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let key = try resolveKey(self.key, environment: context.environment)
        var provision = self.provision
        let user = provision.user ?? invokingUser(context.environment)
        provision.user = user
        let root = try context.root()
        if format == "docker", root.path.unicodeScalars.contains(where: { $0 == " " || $0 == "\t" || $0 == "'" || $0 == "\"" || $0 == "\\" }) {
            throw SiloError.usage("root '\(displayable(root.path))' has a space or quote, which the one-line docker arguments cannot carry through $(...); use --format json or a root without them")
        }
        let a = try Provisioner(root: root, log: context.log)
            .attach(provision.request(key: key, environment: context.environment), mode: lease.mode, wait: lease.wait, holder: lease.holder, ttl: lease.ttl)
        let args = ["-v", "\(a.home):\(homeAt)", "-e", "CARGO_HOME=\(homeAt)", "-v", "\(a.target):\(targetAt)", "-e", "CARGO_TARGET_DIR=\(targetAt)",
                    "--user", "\(user.uid):\(user.gid)"]
        if format == "json" {
            print(try encodeJSON(Mount(key: a.key, slot: a.slot, home: a.home, target: a.target, home_at: homeAt, target_at: targetAt,
                                       user: "\(user.uid):\(user.gid)", holder: a.holder, expires: a.expires, docker_args: args)))
        } else {
            print(args.joined(separator: " "))
        }
        return 0
    }
}

struct HookCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "hook",
        summary: "GitHub runner hooks: take the job's cache at job start, release it at job end.",
        options: [
            OptionSpec("--shard", value: "S", help: "Append -s<S> to the derived key, as 'silo key --shard' does."),
            OptionSpec("--exit-status", value: "N", help: "job-completed: the job's exit status, for the store."),
        ] + RecordedLeaseOptions.specs.filter { $0.name != "--holder" } + ProvisionOptions.specs,
        positionals: ["EVENT"],
        discussion: """
        EVENT is job-started or job-completed; point ACTIONS_RUNNER_HOOK_JOB_STARTED and
        ACTIONS_RUNNER_HOOK_JOB_COMPLETED at scripts that run them. job-started derives the key from the job's
        environment like 'silo key', takes a recorded lease for the holder gh-<runner>-<run id>-<attempt>-<job>
        (--share private and --ttl 6h unless given: matrix jobs of one ref get slots of their own, and 6 h is
        GitHub's default job timeout) and appends CARGO_HOME, CARGO_TARGET_DIR, SILO_KEY, SILO_SLOT and
        SILO_HOLDER to $GITHUB_ENV. job-completed releases that lease; nothing to release is a warning, not a
        failure, so a hook never fails a job that silo did not start.
        """
    )

    /// GitHub's default job timeout (timeout-minutes: 360): a lease outliving it has lost its job.
    static let defaultTTL = 6 * 3600.0

    enum Event: String { case started = "job-started", completed = "job-completed" }

    var event: Event
    var shard: String?
    var exitStatus: Int32?
    var lease: RecordedLeaseOptions
    var provision: ProvisionOptions

    init(_ args: ParsedArguments) throws(SiloError) {
        let e = args.positionals[0]
        guard let event = Event(rawValue: e) else { throw .usage("'silo hook \(displayable(e))': unknown event; expected job-started or job-completed") }
        self.event = event
        shard = args.value("--shard")
        exitStatus = try parseExitStatus(args)
        lease = try RecordedLeaseOptions(args, defaultMode: .private, defaultTTL: Self.defaultTTL)
        provision = try ProvisionOptions(args)
    }

    /// The holder id of this job: the same at job start and at job end, different for every job
    /// (and matrix entry: they run on different runners) the host runs.
    static func holder(_ env: [String: String]) throws(SiloError) -> HolderID {
        guard let run = env["GITHUB_RUN_ID"], !run.isEmpty, let job = env["GITHUB_JOB"], !job.isEmpty else {
            throw SiloError("GITHUB_RUN_ID and GITHUB_JOB must be set; silo hook runs as a GitHub runner hook (ACTIONS_RUNNER_HOOK_JOB_STARTED / _COMPLETED)")
        }
        let parts = ["gh", env["RUNNER_NAME"] ?? "", run, env["GITHUB_RUN_ATTEMPT"] ?? "1", job].filter { !$0.isEmpty }
        guard let id = HolderID.sanitized(parts.joined(separator: "-")) else { throw SiloError("cannot make a holder id from the job's environment") }
        return id
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let env = context.environment
        let holder = try Self.holder(env)
        let provisioner = Provisioner(root: try context.root(), log: context.log)
        switch event {
        case .started:
            if env["GITHUB_ENV"]?.isEmpty ?? true { try appendToGitHubEnv([], environment: env) }
            let key = try KeyCommand.derive(environment: env, shard: shard)
            let a = try provisioner.attach(provision.request(key: key, environment: env), mode: lease.mode, wait: lease.wait, holder: holder, ttl: lease.ttl)
            try appendToGitHubEnv(jobVariables(a), environment: env)
            context.log.info("job \(holder) holds key '\(a.key)' slot \(a.slot) until \(formatTimestamp(a.expires ?? 0)) or job-completed")
        case .completed:
            try context.root().prepare()
            if let r = try provisioner.release(holder: holder, exitStatus: exitStatus) {
                context.log.info("job \(holder) released key '\(r.key)' slot \(r.slot)")
            } else {
                context.log.warning("job \(holder) holds no recorded lease (released already, or it expired); nothing to release")
            }
        }
        return 0
    }
}

struct FixOwnerCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "fix-owner",
        summary: "Give every entry of a key's cache back to the runner uid after a root container wrote into it.",
        options: [
            OptionSpec("--key", value: "KEY", help: "The cache key (required)."),
            OptionSpec("--slot", value: "N", help: "The slot. Default: 1."),
            OptionSpec("--uid", value: "N", help: "The runner uid. Default: the invoking user (SUDO_UID under sudo)."),
            OptionSpec("--gid", value: "N", help: "Its group. Default: the uid's primary group."),
            OptionSpec("--wait", value: "DURATION", help: "Wait this long for a job in the cache to end. Default: do not wait."),
            OptionSpec("--json", help: "Print the counts as JSON."),
        ],
        discussion: """
        fchownat(AT_SYMLINK_NOFOLLOW) of every entry of the cache's home and target dir: a symlink is changed
        itself, never what it points at; nothing outside the cache and nothing on another mount is touched.
        Read-only files with other links (a base's inodes, shared by hard links) are left as they are.
        Runs with no job in the cache (the collector's hold); needs root to take files from another uid.
        """
    )

    var key: String
    var slot: Int
    var uid: UInt32?
    var gid: UInt32?
    var wait: Double?
    var json: Bool

    init(_ args: ParsedArguments) throws(SiloError) {
        guard let key = args.value("--key") else { throw .usage("'silo fix-owner' needs --key KEY, like: silo fix-owner --key pr-1 --uid 1000 --gid 1000") }
        self.key = key
        slot = try parseSlot(args)
        uid = try args.value("--uid").map { v throws(SiloError) in try VerifyCommand.id(v, flag: "--uid") }
        gid = try args.value("--gid").map { v throws(SiloError) in try VerifyCommand.id(v, flag: "--gid") }
        wait = try args.value("--wait").map { w throws(SiloError) in try parseDuration(w, flag: "--wait") }
        json = args.flag("--json")
    }

    struct Report: Encodable {
        var key: String
        var slot: Int
        var uid: UInt32
        var gid: UInt32
        var changed: Int
        var directories: Int
        var shared_skipped: Int
        var skipped_mounts: [String]
        var failures: [String]
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let key = try CacheKey(validating: self.key)
        let runner = uid ?? invokingUser(context.environment).uid
        let group = gid ?? (uid == nil ? invokingUser(context.environment).gid : (Identity.primaryGroup(of: runner) ?? runner))
        let root = try context.root()
        try root.prepare()
        let slotPath = root.slotPath(key, slot)
        guard CacheLayout.isComplete(slotPath) else { throw SiloError("key '\(key)' has no cache in slot \(slot) (expected \(slotPath))", exitCode: ExitCode.usage) }
        // No job in the cache while its owners change (a root container still writing would race it).
        let hold = try LeaseManager(root: root).holdIdle(key: key, slot: slot, wait: wait, purpose: "fix-owner")
        defer { hold.close() }
        var report = Report(key: key.rawValue, slot: slot, uid: runner, gid: group, changed: 0, directories: 0, shared_skipped: 0, skipped_mounts: [], failures: [])
        for path in [root.homePath(key, slot), root.targetPath(key, slot)] {
            let walk: WalkReport
            do { walk = try TreeWalk.changeOwner(path, uid: runner, gid: group) } catch {
                report.failures.append("\(path): \(error)")
                continue
            }
            report.changed += walk.files
            report.directories += walk.directories
            report.shared_skipped += walk.sharedSkipped
            report.skipped_mounts += walk.skippedMounts
            report.failures += walk.failures.map(\.description)
        }
        context.log.info("gave \(report.changed) entries of \(key) slot \(slot) to \(runner):\(group)")
        if json {
            print(try encodeJSON(report))
        } else {
            print("fix-owner \(key)/\(slot): \(report.changed) entries given to \(runner):\(group)"
                  + (report.shared_skipped > 0 ? "; \(report.shared_skipped) shared with a base left as they are" : "")
                  + (report.skipped_mounts.isEmpty ? "" : "; \(report.skipped_mounts.count) mounts skipped")
                  + (report.failures.isEmpty ? "" : "; \(report.failures.count) failed"))
            for f in report.failures { context.log.error("cannot chown \(f)") }
        }
        return report.failures.isEmpty ? 0 : ExitCode.failure
    }
}
