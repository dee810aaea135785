import SiloCore
import Foundation
import SiloSystem

struct LeaseCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "lease",
        summary: "Take or end a recorded lease for work silo does not run itself (docker run, a runner's job).",
        options: [
            OptionSpec("--key", value: "KEY", help: "acquire: the cache key. Default: derived from the CI environment like 'silo key'."),
            OptionSpec("--holder", value: "ID", help: "Who holds the lease ([A-Za-z0-9._-], up to 128): what release names it by."),
            OptionSpec("--ttl", value: "DURATION", help: "acquire: the lease expires after this long (2h, 90m) unless released first. Required."),
            OptionSpec("--share", value: "MODE", help: "acquire: locked (default), private or shared, as for silo exec."),
            OptionSpec("--wait", value: "DURATION", help: "acquire: give up on a busy key after this long and exit 75. Default: wait as long as it takes."),
            OptionSpec("--exit-status", value: "N", help: "release: the job's exit status, for the store."),
            OptionSpec("--json", help: "Print the lease (acquire) or the leases (ls) as JSON."),
        ] + ProvisionOptions.specs,
        positionals: ["ACTION"],
        discussion: """
        ACTION is acquire, release or ls. acquire makes the key's cache ready (creating and seeding it) and
        records a lease for the holder: jobs, other leases and reap treat it like a running job until
        'silo lease release --holder ID' or until the TTL runs out; reap reports expired leases and drops
        them. Acquiring again with the same holder renews the lease. acquire prints the cache's directories.
        """
    )

    enum Action: String { case acquire, release, ls }

    var action: Action
    var key: String?
    var holder: HolderID?
    var ttl: Double?
    var mode: ShareMode
    var wait: Double?
    var exitStatus: Int32?
    var json: Bool
    var provision: ProvisionOptions

    init(_ args: ParsedArguments) throws(SiloError) {
        let a = args.positionals[0]
        guard let action = Action(rawValue: a) else { throw .usage("'silo lease \(displayable(a))': unknown action; expected acquire, release or ls") }
        self.action = action
        key = args.value("--key")
        holder = try args.value("--holder").map { h throws(SiloError) in try HolderID(validating: h) }
        ttl = try args.value("--ttl").map { t throws(SiloError) in try parseDuration(t, flag: "--ttl") }
        mode = try parseShareMode(args)
        wait = try args.value("--wait").map { w throws(SiloError) in try parseDuration(w, flag: "--wait") }
        exitStatus = try parseExitStatus(args)
        json = args.flag("--json")
        provision = try ProvisionOptions(args)
        switch action {
        case .acquire:
            guard holder != nil else { throw .usage("'silo lease acquire' needs --holder ID, like --holder gh-$GITHUB_RUN_ID-$GITHUB_JOB") }
            guard let ttl else { throw .usage("'silo lease acquire' needs --ttl DURATION (like 2h): a lease nobody releases must run out") }
            guard ttl > 0 else { throw .usage("--ttl must be longer than 0; expected a duration like 2h") }
        case .release:
            guard holder != nil else { throw .usage("'silo lease release' needs --holder ID") }
        case .ls:
            break
        }
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let root = try context.root()
        let provisioner = Provisioner(root: root, log: context.log)
        switch action {
        case .acquire:
            let key = try resolveKey(self.key, environment: context.environment)
            let a = try provisioner.attach(provision.request(key: key, environment: context.environment), mode: mode, wait: wait, holder: holder, ttl: ttl)
            if json {
                print(try encodeJSON(a))
            } else {
                print("key=\(a.key)\nslot=\(a.slot)\nholder=\(a.holder ?? "")\nexpires=\(formatTimestamp(a.expires ?? 0))\nCARGO_HOME=\(a.home)\nCARGO_TARGET_DIR=\(a.target)")
            }
            return 0
        case .release:
            try root.prepare()
            guard let r = try provisioner.release(holder: holder!, exitStatus: exitStatus) else {
                throw SiloError("no recorded lease for holder '\(holder!)' (see silo lease ls); it was released, or expired and dropped by reap")
            }
            context.log.info("released key '\(r.key)' slot \(r.slot) (holder \(r.holder))")
            return 0
        case .ls:
            try root.prepare()
            let now = Clock.now()
            let records = LeaseManager(root: root).allRecords()
            if json {
                struct Row: Encodable { var holder, key: String; var slot: Int; var mode: String; var uid: UInt32; var acquired, expires: Double; var expired: Bool }
                print(try encodeJSON(records.map { Row(holder: $0.holder, key: $0.key, slot: $0.slot, mode: $0.mode, uid: $0.uid, acquired: $0.acquired, expires: $0.expires, expired: $0.isExpired(at: now)) }))
                return 0
            }
            for r in records {
                print("\(r.holder)  \(r.key)/\(r.slot)  \(r.mode)  uid \(r.uid)  " + (r.isExpired(at: now) ? "expired \(formatTimestamp(r.expires))" : "until \(formatTimestamp(r.expires))"))
            }
            return 0
        }
    }
}
