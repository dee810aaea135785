// The root: one directory on local disk that holds every cache, the state store and the locks.
//
//   <root>/LAYOUT                      "silo-layout 1": what this tree is and which layout it uses
//   <root>/silo.db                     the state store (SQLite)
//   <root>/caches/<key>/<slot>/home    a whole CARGO_HOME (registry, git, locks, .global-cache)
//   <root>/caches/<key>/<slot>/target  the CARGO_TARGET_DIR
//   <root>/locks/<key>/<slot>.*        the lease locks; kept apart from caches so that renaming a cache
//                                      away (tombstoning) never moves a lock someone is waiting on
//   <root>/trash/                      tombstoned caches waiting to be deleted (same filesystem)
//
// The root must be on a local filesystem: cargo turns its own locks off on NFS, and flock-based
// leases are only as good as the filesystem's flock.

import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

public struct SiloRoot: Sendable {
    public let path: String

    /// Bumped when the on-disk layout changes incompatibly; a root of another version is refused.
    public static let layoutVersion = 1
    static let layoutFile = "LAYOUT"
    static let layoutContents = "silo-layout \(layoutVersion)\n"

    public init(path: String) { self.path = path }

    /// `--root`, else `$SILO_ROOT`, else `/var/lib/silo` for root, else `$XDG_CACHE_HOME/silo` or `~/.cache/silo`.
    public static func resolve(flag: String?, environment env: [String: String], effectiveUID: UInt32 = Identity.effectiveUID) throws(SiloError) -> SiloRoot {
        if let flag { return try SiloRoot(path: absolutePath(flag, what: "--root")) }
        if let env = env["SILO_ROOT"], !env.isEmpty { return try SiloRoot(path: absolutePath(env, what: "SILO_ROOT")) }
        if effectiveUID == 0 { return SiloRoot(path: "/var/lib/silo") }
        if let xdg = env["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return SiloRoot(path: xdg + "/silo") }
        guard let home = env["HOME"].flatMap({ $0.isEmpty ? nil : $0 }) ?? Identity.passwdHome() else {
            throw SiloError("cannot choose a root: HOME is unset and the user has no home directory; pass --root DIR or set SILO_ROOT")
        }
        return SiloRoot(path: home + "/.cache/silo")
    }

    public var storePath: String { path + "/silo.db" }
    public var cachesPath: String { path + "/caches" }
    public var locksPath: String { path + "/locks" }
    public var trashPath: String { path + "/trash" }

    public func keyPath(_ key: CacheKey) -> String { cachesPath + "/" + key.rawValue }
    public func slotPath(_ key: CacheKey, _ slot: Int) -> String { keyPath(key) + "/\(slot)" }
    public func homePath(_ key: CacheKey, _ slot: Int) -> String { slotPath(key, slot) + "/home" }
    public func targetPath(_ key: CacheKey, _ slot: Int) -> String { slotPath(key, slot) + "/target" }
    public func lockDirectory(_ key: CacheKey) -> String { locksPath + "/" + key.rawValue }

    /// Creates the root on first use, or checks that an existing one is a silo root of this layout on
    /// a local filesystem. Cheap when the root exists: one read and one statfs.
    public func prepare() throws(SiloError) {
        if try readLayout() != nil { return try refuseNetworkFilesystem() }
        if let st = try? FileSystem.status(path), !st.isDirectory {
            throw SiloError("root \(path) exists and is not a directory; expected a directory for silo's caches")
        }
        do {
            try FileSystem.makeDirectories(path, mode: 0o755)
        } catch {
            throw SiloError("cannot create root \(path): \(error)")
        }
        try refuseNetworkFilesystem()
        // Concurrent first uses serialize on a flock of the root directory itself, so none of them
        // sees another's half-made layout and takes it for a foreign directory.
        let dir: FileDescriptor
        do {
            dir = try FileDescriptor.open(path, [.readOnly, .directory, .noFollow, .closeOnExec])
            try dir.lock(.exclusive)
        } catch {
            throw SiloError("cannot lock root \(path) to create it: \(error)")
        }
        defer { dir.close() }
        if try readLayout() != nil { return }
        if let names = try? FileSystem.list(path), let foreign = names.sorted().first {
            throw SiloError("root \(path) is a non-empty directory that is not a silo root (it has '\(displayable(foreign))'); choose an empty or new directory")
        }
        do {
            for dir in [cachesPath, locksPath, trashPath] { try FileSystem.makeDirectories(dir, mode: 0o755) }
            try FileSystem.writeAtomically(path + "/" + Self.layoutFile, Self.layoutContents)
        } catch {
            throw SiloError("cannot create root \(path): \(error)")
        }
    }

    /// The layout file's contents, nil when there is none; a foreign layout is an error.
    func readLayout() throws(SiloError) -> String? {
        let layout = path + "/" + Self.layoutFile
        let existing: String?
        do { existing = try FileSystem.read(layout) } catch { throw SiloError("cannot read \(layout): \(error)") }
        if let existing, existing != Self.layoutContents {
            throw SiloError("root \(path) has layout '\(displayable(existing.trimmingWhitespace))' in \(layout); this silo expects '\(Self.layoutContents.trimmingWhitespace)'")
        }
        return existing
    }

    func refuseNetworkFilesystem() throws(SiloError) {
        let type: Int
        do { type = try FileSystem.filesystemType(path) } catch { throw SiloError("cannot statfs root \(path): \(error)") }
        if let refusal = Self.networkFilesystemRefusal(path: path, statfsType: type) { throw refusal }
    }

    /// The error for a root on a filesystem of statfs type `statfsType`, nil when it is local.
    static func networkFilesystemRefusal(path: String, statfsType: Int) -> SiloError? {
        guard let name = FileSystem.networkFilesystems[statfsType] else { return nil }
        return SiloError("root \(path) is on \(name); cargo disables its file locks on network filesystems and silo's leases need flock, so use a directory on local disk (--root DIR)")
    }
}

extension String {
    var trimmingWhitespace: String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
