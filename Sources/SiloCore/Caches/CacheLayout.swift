// Creating a cache: a whole CARGO_HOME and a target dir, made aside and renamed into place.
//
//   caches/<key>/<slot>/.silo-cache   written last inside the new directory, before the rename:
//                                     a slot directory without it is a leftover of a killed
//                                     creation and is never handed to a job. JSON: key, slot,
//                                     layout, and "base":"NAME/N" when seeded from a base
//   caches/<key>/<slot>/home          CARGO_HOME: registry/, git/, .package-cache, .package-cache-mutate,
//                                     and cargo's own .global-cache: the locks live beside the
//                                     registry they protect, never in a private copy per job
//   caches/<key>/<slot>/target        CARGO_TARGET_DIR
//
// `bin/` is not part of a cache: cargo, rustc and rustup stay where PATH finds them.

import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

public struct CachePaths: Sendable {
    public let slotDirectory: String
    public let home: String
    public let target: String
}

public struct CacheLayout {
    public let root: SiloRoot
    public static let marker = ".silo-cache"

    public init(root: SiloRoot) { self.root = root }

    /// Whether `slotDirectory` is a complete cache: a real directory (lstat: a symlink is none)
    /// holding the marker creation writes last.
    public static func isComplete(_ slotDirectory: String) -> Bool {
        (try? FileSystem.status(slotDirectory))??.isDirectory == true
            && (try? FileSystem.status(slotDirectory + "/" + marker))??.isRegular == true
    }

    public func paths(_ key: CacheKey, _ slot: Int) -> CachePaths {
        CachePaths(slotDirectory: root.slotPath(key, slot), home: root.homePath(key, slot), target: root.targetPath(key, slot))
    }

    /// Returns the cache of `key`/`slot`, creating it when missing -- seeded from a base when
    /// `seeder` has one, owned by `owner` when given. Call it only while holding a lease on the
    /// slot: the collector cannot then remove it between this check and the job's start.
    /// Returns the creation (nil when the cache existed).
    @discardableResult
    public func ensure(_ key: CacheKey, _ slot: Int, seeder: Seeder? = nil, owner: (uid: UInt32, gid: UInt32)? = nil) throws(SiloError) -> Creation? {
        let p = paths(key, slot)
        if Self.isComplete(p.slotDirectory) { return nil }
        let trash = Trash(root: root)
        let staging = root.keyPath(key) + "/.new-\(slot)-\(getpid())"
        var seeded: SeedOutcome?
        do {
            if try FileSystem.status(p.slotDirectory) != nil {
                // A slot directory without its marker: a creation was killed halfway, or docker made a
                // mount source here. Never use it.
                try trash.delete(p.slotDirectory, label: "\(key).\(slot).partial")
            }
            if try FileSystem.status(staging) != nil { _ = try TreeWalk.remove(staging) }
            try Self.makeDirectoriesRetrying(staging + "/home/registry")
            try FileSystem.makeDirectories(staging + "/home/git")
            try FileSystem.makeDirectories(staging + "/target")
            seeded = try seeder?.seed(home: staging + "/home", target: staging + "/target")
            // Cargo's two lock files, created up front so that they exist before any job runs.
            for lock in [".package-cache", ".package-cache-mutate"] {
                try FileDescriptor.open(staging + "/home/" + lock, [.writeOnly, .create, .noFollow, .closeOnExec], mode: 0o644).close()
            }
            if let owner {
                for entry in ["home", "home/registry", "home/git", "home/.package-cache", "home/.package-cache-mutate", "target"] {
                    try FileDescriptor.cwd.changeOwnerAt(staging + "/" + entry, uid: owner.uid, gid: owner.gid)
                }
            }
            let base = seeded.map { ",\"base\":\"\($0.base)\"" } ?? ""
            try FileSystem.writeAtomically(staging + "/" + Self.marker, "{\"key\":\"\(key)\",\"slot\":\(slot),\"layout\":\(SiloRoot.layoutVersion)\(base)}\n")
            if rename(staging, p.slotDirectory) != 0 {
                let e = Errno.current("rename", path: p.slotDirectory)
                _ = try? TreeWalk.remove(staging)
                // Another shared holder created it first: use theirs.
                if e.code == EEXIST || e.code == ENOTEMPTY { return nil }
                throw e
            }
            return Creation(seeded: seeded)
        } catch let error as SiloError {
            _ = try? TreeWalk.remove(staging)
            throw SiloError("cannot create cache \(p.slotDirectory): \(error.message); nothing was created", exitCode: error.exitCode)
        } catch {
            _ = try? TreeWalk.remove(staging)
            throw SiloError("cannot create cache \(p.slotDirectory): \(error); nothing was created")
        }
    }

    /// What creating a cache did.
    public struct Creation: Sendable {
        public let seeded: SeedOutcome?
    }

    /// The base a cache was seeded from, as its marker records it.
    public static func base(ofSlot slotDirectory: String) -> BaseRef? {
        guard let text = (try? FileSystem.read(slotDirectory + "/" + marker)) ?? nil,
              let range = text.range(of: "\"base\":\"") else { return nil }
        let rest = text[range.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return BaseRef(parsing: String(rest[..<end]))
    }

    /// mkdir -p that tries again when a component vanished meanwhile: the collector removes an
    /// empty key directory, and may do so between two of our mkdirs.
    static func makeDirectoriesRetrying(_ path: String) throws(Errno) {
        for _ in 0..<3 {
            do {
                return try FileSystem.makeDirectories(path)
            } catch where error.code == ENOENT {
                continue
            }
        }
        try FileSystem.makeDirectories(path)
    }
}
