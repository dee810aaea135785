// Seeding: a new cache's CARGO_HOME (and, for a base promoted --with-target, its target dir)
// filled from a base before the cache is renamed into place, so that no job ever sees a
// half-seeded cache: it sees the complete seeded cache or none (CacheLayout.ensure).

import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

/// Which base a new cache starts from.
public enum BaseChoice: Sendable, Equatable {
    /// The base named `default`, when there is one; else cold.
    case automatic
    /// Cold: an empty CARGO_HOME.
    case none
    /// This base, which must exist.
    case named(CacheKey)

    public static let defaultName = "default"
}

public struct SeedOutcome: Sendable {
    public let base: BaseRef
    public let method: SeedMethod
    public let report: CloneReport
    public let seconds: Double
}

public struct Seeder: Sendable {
    public let root: SiloRoot
    public let choice: BaseChoice
    public let requestedMethod: SeedMethod?
    /// The uid the job runs as, and the owner of what seeding creates.
    public let jobUID: UInt32
    public let owner: (uid: UInt32, gid: UInt32)?

    public init(root: SiloRoot, choice: BaseChoice, method: SeedMethod?, jobUID: UInt32, owner: (uid: UInt32, gid: UInt32)?) {
        self.root = root
        self.choice = choice
        self.requestedMethod = method
        self.jobUID = jobUID
        self.owner = owner
    }

    /// The base's name, nil for a cold start.
    var baseName: CacheKey? {
        switch choice {
        case .none: return nil
        case .automatic: return try? CacheKey(validating: BaseChoice.defaultName)
        case .named(let n): return n
        }
    }

    /// Refuses a named base that does not exist, before anything is created.
    public func check() throws(SiloError) {
        if case .named(let n) = choice, BaseStore(root: root).current(n) == nil {
            let known = BaseStore(root: root).names().filter { BaseStore(root: root).current($0) != nil }.map(\.rawValue)
            throw SiloError("--from \(n): no base of that name (bases: \(known.isEmpty ? "none" : known.joined(separator: ", "))); promote one with silo promote --key main --as \(n), or pass --from none", exitCode: ExitCode.usage)
        }
    }

    /// Fills `home` (and `target`) in a staging directory from the base. Nil when there is none to use.
    public func seed(home: String, target: String) throws(SiloError) -> SeedOutcome? {
        guard let name = baseName else { return nil }
        guard let hold = try BaseStore(root: root).hold(name) else {
            if case .named = choice { throw SiloError("--from \(name): the base is gone (collected meanwhile?); promote it again or pass --from none") }
            return nil
        }
        let t0 = Clock.monotonic()
        // The base's sources are in use while caches start from them: an mtime sweep must not see
        // them as old (Freshness), or it would hollow out every cache seeded after it.
        Freshness.freshen(slotDirectory: hold.path, home: hold.home)
        let parties = SeedPolicy.Parties(jobUID: jobUID, baseOwner: hold.manifest.owner, seederUID: Identity.effectiveUID,
                                         reflink: TreeClone.reflinkSupported(in: home))
        let method = try SeedPolicy.choose(parties, requested: requestedMethod)
        var report = CloneReport()
        do {
            var options = CloneOptions(method: method)
            options.owner = owner
            let progress = Progress.onTerminal("seeding from base \(hold.ref) by \(method.rawValue)", total: hold.manifest.files)
            defer { progress?.finish() }
            options.progress = progress
            report.merge(try TreeClone.run(from: hold.home, into: home, options))
            if let baseTarget = hold.target {
                // Cargo rewrites target files in place all the time: never linked.
                options.method = method == .hardlink ? .copy : method
                report.merge(try TreeClone.run(from: baseTarget, into: target, options))
            }
        } catch {
            throw SiloError("cannot seed from base \(hold.ref): \(error)")
        }
        return SeedOutcome(base: hold.ref, method: method, report: report, seconds: Clock.monotonic() - t0)
    }
}
