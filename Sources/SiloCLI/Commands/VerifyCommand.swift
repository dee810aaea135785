import SiloCore
import SiloSystem
import Foundation

struct VerifyCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "verify",
        summary: "Find every corruption of a cargo home that cargo trusts, and heal it safely.",
        options: [
            OptionSpec("--key", value: "KEY", help: "Verify this key's cache (home and target dir)."),
            OptionSpec("--slot", value: "N", help: "With --key: the slot (default 1)."),
            OptionSpec("--cargo-home", value: "PATH", help: "Verify this CARGO_HOME instead (any, silo's or not). Default: $CARGO_HOME, else ~/.cargo."),
            OptionSpec("--target-dir", value: "PATH", help: "Also check this target dir for stale build-script output."),
            OptionSpec("--deep", help: "Also compare file contents against each .crate (each decompressed once)."),
            OptionSpec("--heal", help: "Fix what is found, under cargo's lock; healed crates re-extract offline."),
            OptionSpec("--uid", value: "N", help: "Judge ownership and permissions for this uid (the one that runs cargo). Default: the invoking user."),
            OptionSpec("--gid", value: "N", help: "Its group. Default: the uid's primary group."),
            OptionSpec("--json", help: "Print the result as one JSON object (fields in docs/json.md)."),
        ],
        discussion: """
        Problem kinds: marker-missing, marker-invalid, file-missing, file-size-mismatch, file-type-mismatch,
        file-content-mismatch (--deep), extra-file, crate-missing, crate-checksum-mismatch, crate-unreadable-archive,
        index-cache-corrupt, foreign-owner, unreadable, unwritable, dangling-bin-link, orphan-registry,
        stale-build-output. Exit status: 0 healthy (or fully healed), 1 problems remain, 2 usage error.
        """
    )

    var key: String?
    var slot: Int
    var cargoHome: String?
    var targetDir: String?
    var deep: Bool
    var heal: Bool
    var uid: UInt32?
    var gid: UInt32?
    var json: Bool

    init(_ args: ParsedArguments) throws(SiloError) {
        key = args.value("--key")
        cargoHome = args.value("--cargo-home")
        if key != nil && cargoHome != nil { throw .usage("--key and --cargo-home name two different homes; give one") }
        slot = 1
        if let s = args.value("--slot") {
            guard let n = Int(s), n >= 1, n <= LeaseManager.maxPrivateSlots else {
                throw .usage("--slot '\(displayable(s))' is not a slot; expected a number from 1 to \(LeaseManager.maxPrivateSlots)")
            }
            guard key != nil else { throw .usage("--slot needs --key") }
            slot = n
        }
        targetDir = args.value("--target-dir")
        deep = args.flag("--deep")
        heal = args.flag("--heal")
        uid = try args.value("--uid").map { v throws(SiloError) in try Self.id(v, flag: "--uid") }
        gid = try args.value("--gid").map { v throws(SiloError) in try Self.id(v, flag: "--gid") }
        json = args.flag("--json")
    }

    static func id(_ text: String, flag: String) throws(SiloError) -> UInt32 {
        guard let n = UInt32(text), n < UInt32.max else { throw .usage("\(flag) '\(displayable(text))' is not a numeric id; expected a number like 1000") }
        return n
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let env = context.environment
        var home: String
        var target = try targetDir.map { p throws(SiloError) in try absolutePath(p, what: "--target-dir") }
        var lease: Lease?
        defer { lease?.release() }
        if let key {
            let k = try CacheKey(validating: key)
            let root = try context.root()
            try root.prepare()
            home = root.homePath(k, slot)
            guard CacheLayout.isComplete(root.slotPath(k, slot)) else {
                throw SiloError("key '\(k)' slot \(slot) has no cache under \(root.path); see silo ls")
            }
            if target == nil { target = root.targetPath(k, slot) }
            if heal {
                // Healing changes the target dir too: no job of the key may be building meanwhile.
                lease = try LeaseManager(root: root).acquire(key: k, mode: .locked, wait: nil, command: "silo verify --heal") { blockers in
                    context.log.info("key '\(k)' is busy (\(blockers.first.map { "held by \($0.summary)" } ?? "held by another job")); waiting to heal")
                }
            }
        } else if let cargoHome {
            home = try absolutePath(cargoHome, what: "--cargo-home")
        } else if let h = env["CARGO_HOME"], !h.isEmpty {
            home = try absolutePath(h, what: "CARGO_HOME")
        } else if let h = env["HOME"] ?? Identity.passwdHome() {
            home = h + "/.cargo"
        } else {
            throw SiloError("cannot find a cargo home: HOME and CARGO_HOME are unset; pass --cargo-home PATH")
        }
        while home.count > 1 && home.hasSuffix("/") { home.removeLast() }
        let runner = uid ?? Self.invokingUID(env)
        let group = gid ?? Identity.primaryGroup(of: runner) ?? runner
        var options = VerifyOptions(home: home, target: target, uid: runner, gid: group)
        options.deep = deep
        var result = try Verifier.run(options)
        if heal && !result.problems.isEmpty {
            try Healer(options: options, log: context.log).heal(&result)
            let after = try Verifier.run(options)
            // What is left after healing decides the exit status; healed problems stay in the report,
            // and a problem the heal itself leaves (a removed .crate is now missing) is added.
            let before = Set(result.problems.map { "\($0.kind.rawValue) \($0.path)" })
            let remaining = Set(after.problems.map { "\($0.kind.rawValue) \($0.path)" })
            for i in result.problems.indices where remaining.contains("\(result.problems[i].kind.rawValue) \(result.problems[i].path)") {
                result.problems[i].healed = false
            }
            result.problems += after.problems.filter { !before.contains("\($0.kind.rawValue) \($0.path)") }
        }
        if let key, let k = try? CacheKey(validating: key), let store = try? Store(root: try context.root()) {
            // For silo metrics: what verify of a silo cache found and healed.
            let found = result.problems.filter { $0.severity != .info }
            try? store.recordVerify(key: k, slot: slot, started: Clock.now() - result.seconds, errors: found.filter { $0.severity == .error }.count,
                                    warnings: found.filter { $0.severity == .warning }.count, healed: found.filter { $0.healed == true }.count,
                                    remaining: result.open.count)
        }
        if json {
            print(try encodeJSON(result))
        } else {
            print(Self.text(result, healing: heal), terminator: "")
        }
        return result.open.isEmpty ? 0 : ExitCode.failure
    }

    /// The user who ran silo: SUDO_UID under sudo, else the real uid.
    static func invokingUID(_ env: [String: String]) -> UInt32 {
        if Identity.effectiveUID == 0, let s = env["SUDO_UID"], let n = UInt32(s) { return n }
        return Identity.realUID
    }

    static func text(_ r: VerifyResult, healing: Bool) -> String {
        let counts = [Severity.error, .warning, .info].map { s in (s, r.problems.filter { $0.severity == s }.count) }.filter { $0.1 > 0 }
        var out = "silo verify: \(r.home): \(r.crates) crates, \(r.archives) archives, "
        if r.problems.isEmpty {
            out += "healthy (\(String(format: "%.2f", r.seconds))s)\n"
            return out
        }
        out += "\(r.problems.count) problem(s) (" + counts.map { "\($0.1) \($0.0.rawValue)" }.joined(separator: ", ") + ")"
        if healing { out += ", \(r.problems.filter { $0.healed == true }.count) healed" }
        out += ", \(r.open.count) open\n"
        var rows = [["KIND", "SEVERITY", "CRATE", "PATH", "DETAIL", healing ? "HEALED" : "FIX"]]
        for p in r.problems {
            rows.append([p.kind.rawValue, p.severity.rawValue, p.crate ?? "-", p.path, p.detail, healing ? (p.healed == true ? "yes" : "no: " + p.fix) : p.fix])
        }
        let widths = (0..<5).map { c in min(60, rows.map { $0[c].count }.max() ?? 0) }
        for row in rows {
            out += (0..<5).map { row[$0].padding(toLength: max(widths[$0], row[$0].count), withPad: " ", startingAt: 0) }.joined(separator: "  ") + "  " + row[5] + "\n"
        }
        return out
    }
}
