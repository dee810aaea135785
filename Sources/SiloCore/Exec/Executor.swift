// `silo exec`: run one job in its key's cache, under a lease.
//
// Order matters:
//   1. find the command on PATH (127 before anything is created: a typo costs nothing);
//   2. take the lease (may wait), so that nothing below races the collector or another job;
//   3. make sure the cache exists (created aside -- seeded from a base -- and renamed in) and
//      carry the cargo config in;
//   4. record the start of the use (a job killed later is still recorded as recent);
//   5. spawn the job in its own process group with the lease's descriptors inherited, forward
//      SIGINT/SIGTERM/SIGHUP to that group, wait;
//   6. record the end and the status, release, exit with the job's status (128+N for signal N).

import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

public struct ExecRequest {
    public var key: CacheKey
    public var mode: ShareMode = .locked
    public var wait: Double?
    public var command: [String]
    public var cargoConfig: String?
    public var withCredentials = false
    public var setTargetDir = true
    public var environment: [String: String]
    /// Which base a cache created for this job starts from.
    public var from: BaseChoice = .automatic
    /// How it is seeded; nil: the safest that applies (SeedPolicy).
    public var seedMethod: SeedMethod?
    /// Run the job as this uid:gid (silo must be root); nil: as silo's own uid.
    public var user: (uid: UInt32, gid: UInt32)?

    public init(key: CacheKey, command: [String], environment: [String: String]) {
        self.key = key
        self.command = command
        self.environment = environment
    }
}

public struct Executor {
    public let root: SiloRoot
    public let log: Logger

    public init(root: SiloRoot, log: Logger) {
        self.root = root
        self.log = log
    }

    /// Runs the job and returns the status silo should exit with.
    public func run(_ request: ExecRequest) throws(SiloError) -> Int32 {
        guard let name = request.command.first else { throw .usage("exec needs a command after the options, like: silo exec --key pr-1 -- cargo build") }
        let executable = try Self.resolve(name, path: request.environment["PATH"])
        var provision = ProvisionRequest(key: request.key, environment: request.environment)
        provision.from = request.from
        provision.seedMethod = request.seedMethod
        provision.user = request.user
        provision.cargoConfig = request.cargoConfig
        provision.withCredentials = request.withCredentials
        let provisioner = Provisioner(root: root, log: log)
        let (seeder, config) = try provisioner.check(provision)

        // Opened before any cache is created, so a fresh store never mistakes a new cache for a lost record.
        var store: Store? = try Store(root: root)
        for notice in store?.notices ?? [] { log.warning(notice) }

        let commandLine = request.command.joined(separator: " ")
        let lease = try LeaseManager(root: root).acquire(key: request.key, mode: request.mode, wait: request.wait, command: String(commandLine.prefix(200))) { blockers in
            let who = blockers.first.map { "held by \($0.summary)" } ?? "held by another job"
            log.info("key '\(request.key)' is busy (\(who)); waiting" + (request.wait.map { " up to \(formatDuration($0))" } ?? ""))
        }
        defer { lease.release() }

        let paths = try provisioner.prepare(provision, slot: lease.slot, seeder: seeder, config: config, store: store)
        // No connection stays open for the job's hours: the last close checkpoints the WAL away, so
        // readers (a dry-run reap) see the store as it is without writing beside it.
        store = nil

        var env = request.environment
        env["CARGO_HOME"] = paths.home
        if request.setTargetDir { env["CARGO_TARGET_DIR"] = paths.target }
        env["SILO_KEY"] = request.key.rawValue
        env["SILO_SLOT"] = String(lease.slot)
        env["SILO_DIR"] = paths.slotDirectory
        env["SILO_ROOT"] = root.path

        let status: TerminationStatus
        do {
            Spawn.installSignalForwarding()
            try lease.setInheritable(true)
            let environment = env.map { "\($0.key)=\($0.value)" }.sorted()
            let pid: pid_t
            // (--user naming silo's own uid needs no change of credentials, and could not drop groups.)
            if let user = request.user, Identity.effectiveUID == 0 {
                pid = try Spawn.start(executable: executable, arguments: request.command, environment: environment, uid: user.uid, gid: user.gid)
            } else {
                pid = try Spawn.start(executable: executable, arguments: request.command, environment: environment)
            }
            Spawn.forwardSignals(to: pid)
            try? lease.setInheritable(false)
            lease.recordJob(pid: pid)
            status = try Spawn.wait(pid)
        } catch {
            throw SiloError("cannot run \(name): \(error)", exitCode: error.code == ENOENT ? ExitCode.commandNotFound : ExitCode.cannotExecute)
        }
        do {
            try Store(root: root).recordEnd(key: request.key, slot: lease.slot, at: Clock.now(), exitStatus: status.shellCode)
        } catch {
            log.warning("could not record the end of the job: \(error)")
        }
        return status.shellCode
    }

    /// The executable for `name`: as given when it has a slash, else the first match on PATH.
    public static func resolve(_ name: String, path: String?) throws(SiloError) -> String {
        if name.contains("/") {
            guard (try? FileSystem.status(name)) != nil else {
                throw SiloError("\(name): command not found", exitCode: ExitCode.commandNotFound)
            }
            guard FileSystem.isExecutable(name) else { throw SiloError("\(name): permission denied", exitCode: ExitCode.cannotExecute) }
            return name
        }
        var sawUnexecutable = false
        for dir in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (dir.isEmpty ? "." : String(dir)) + "/" + name
            var st = stat()
            guard stat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            if FileSystem.isExecutable(candidate) { return candidate }
            sawUnexecutable = true
        }
        if sawUnexecutable { throw SiloError("\(name): permission denied", exitCode: ExitCode.cannotExecute) }
        throw SiloError("\(name): command not found", exitCode: ExitCode.commandNotFound)
    }
}
