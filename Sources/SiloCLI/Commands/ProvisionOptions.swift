import SiloCore

/// The options of every command that may create a cache for a job: which base, how, for whom,
/// and which cargo config it carries. One parser for exec, mount, env, lease acquire and hook.
struct ProvisionOptions: Sendable {
    static let specs: [OptionSpec] = [
        OptionSpec("--from", value: "BASE", help: "A new cache starts from this base (see 'silo promote'); 'none' starts cold. Default: the base 'default' when there is one."),
        OptionSpec("--seed", value: "METHOD", help: "How a new cache gets the base's files: reflink, hardlink or copy. Default: the safest that applies."),
        OptionSpec("--user", value: "UID[:GID]", help: "The job's user (a name or a uid; another than silo's needs root). New caches and their mount points are owned by it."),
        OptionSpec("--cargo-config", value: "FILE", help: "Cargo config to carry into the cache. Default: config.toml of $CARGO_HOME, else of ~/.cargo."),
        OptionSpec("--with-credentials", help: "Also carry credentials.toml (otherwise it is kept out of the cache)."),
    ]

    var from: BaseChoice
    var seed: SeedMethod?
    var user: (uid: UInt32, gid: UInt32)?
    var cargoConfig: String?
    var withCredentials: Bool

    init(_ args: ParsedArguments) throws(SiloError) {
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
        cargoConfig = args.value("--cargo-config")
        withCredentials = args.flag("--with-credentials")
    }

    func request(key: CacheKey, environment: [String: String]) -> ProvisionRequest {
        var r = ProvisionRequest(key: key, environment: environment)
        r.from = from
        r.seedMethod = seed
        r.user = user
        r.cargoConfig = cargoConfig
        r.withCredentials = withCredentials
        return r
    }
}

/// --share, as every command that takes a lease reads it.
func parseShareMode(_ args: ParsedArguments, default mode: ShareMode = .locked) throws(SiloError) -> ShareMode {
    guard let text = args.value("--share") else { return mode }
    guard let m = ShareMode(rawValue: text) else { throw .usage("--share '\(displayable(text))' is not a share mode; expected locked, private or shared") }
    return m
}

/// --key, else the key derived from the CI environment like `silo key`.
func resolveKey(_ text: String?, environment: [String: String]) throws(SiloError) -> CacheKey {
    if let text { return try CacheKey(validating: text) }
    return try KeyCommand.derive(environment: environment, shard: nil)
}

/// --exit-status N (0-255), for the store's record of a job silo did not run.
func parseExitStatus(_ args: ParsedArguments) throws(SiloError) -> Int32? {
    try args.value("--exit-status").map { s throws(SiloError) in
        guard let n = Int32(s), n >= 0, n <= 255 else { throw .usage("--exit-status '\(displayable(s))' is not an exit status; expected 0 to 255") }
        return n
    }
}

/// --slot N, 1 when not given.
func parseSlot(_ args: ParsedArguments) throws(SiloError) -> Int {
    guard let s = args.value("--slot") else { return 1 }
    guard let n = Int(s), n >= 1, n <= LeaseManager.maxPrivateSlots else {
        throw .usage("--slot '\(displayable(s))' is not a slot; expected a number from 1 to \(LeaseManager.maxPrivateSlots)")
    }
    return n
}
