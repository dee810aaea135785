// Which bytes of a base a new cache may share, and how -- as plain data and pure functions. The
// mechanism that links, clones and copies is TreeClone; the one that decides is here.
//
// Three ways to give a new cache the base's files:
//
//   reflink   ioctl(FICLONE) of every file: the new file shares the base's blocks until either is
//             written, then the filesystem copies the written blocks. Nothing a job does to its
//             file reaches the base, whoever the job runs as. Needs XFS (reflink=1) or btrfs.
//   hardlink  the files cargo never rewrites in place (.crate archives, extracted sources, git
//             objects) become second names of the base's inodes; what cargo rewrites (index cache
//             entries, .global-cache, git refs) is copied. A hard link is the same file, so this
//             is safe only when the job cannot write or chmod the base's inodes:
//               - the job is not root (root ignores permissions: it could truncate or rewrite a
//                 linked source and every cache and the base would change with it), and
//               - the base's files belong to another uid than the job's (an owner may chmod its
//                 own read-only file back to writable) and have no write bit (promotion clears it).
//             What the job can still do to a linked file is unlink its own name for it, or replace
//             it by rename: both change its directory, which is its own, never the inode.
//             Creating such a link needs CAP_FOWNER or ownership of the inode (the kernel's
//             fs.protected_hardlinks), so in practice silo seeds as root for a job of another uid.
//   copy      every byte copied (copy_file_range). Always safe, costs a full copy.
//
// The default is the safest of those that apply: reflink where the filesystem has it, else
// hardlink where both conditions hold, else copy. An explicit `--seed hardlink` that would be
// unsafe is refused, never honoured: an untrusted job must not be able to change what every
// later job starts from.

/// How a new cache gets its base's bytes.
public enum SeedMethod: String, Sendable, CaseIterable {
    case reflink, hardlink, copy
}

/// What one file of the base gets when a cache is seeded by hard links.
public enum SeedAction: Sendable, Equatable {
    /// Cargo never rewrites it in place: the base's inode is shared.
    case share
    /// Cargo rewrites it in place (or might): copied.
    case copy
}

public enum SeedPolicy {
    /// The top-level entries of a CARGO_HOME that a base carries. Everything else stays with its
    /// key: config.toml and credentials (a key's secrets must never reach other jobs), bin/ and
    /// .crates.toml (installed tools), the lock files (made fresh in every cache), silo's journals.
    public static let baseEntries: Set<String> = ["registry", "git", ".global-cache"]

    /// The action for a file at `path`, relative to the CARGO_HOME ("registry/src/<reg>/foo-1.0/lib.rs").
    public static func action(forHomePath path: String) -> SeedAction {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count >= 2 else { return .copy }
        switch (parts[0], parts[1]) {
        case ("registry", "cache"):
            // .crate archives: written once at download (to a temporary name, then renamed).
            return parts.count >= 4 ? .share : .copy
        case ("registry", "src"):
            // Extracted sources: cargo writes them only while unpacking (which replaces, never
            // rewrites, an existing file) and `.cargo-ok` last; a stale dir is removed whole.
            return parts.count >= 4 ? .share : .copy
        case ("git", "db"):
            // Git objects and packs are immutable; refs, config, HEAD, FETCH_HEAD are rewritten.
            return parts.count >= 4 && parts[2...].contains("objects") ? .share : .copy
        case ("git", "checkouts"):
            // A checkout's files are written once, `.cargo-ok` last; its `.git` (index, HEAD) is not.
            return parts.count >= 4 && !parts[2...].contains(".git") ? .share : .copy
        default:
            // registry/index (cache entries rewritten on every update), CACHEDIR.TAG, .global-cache.
            return .copy
        }
    }

    /// Who is involved in one seeding.
    public struct Parties: Sendable, Equatable {
        /// The uid the job will run as.
        public var jobUID: UInt32
        /// The uid that owns the base's files.
        public var baseOwner: UInt32
        /// The uid silo seeds as (its effective uid).
        public var seederUID: UInt32
        /// Whether the root's filesystem can reflink (a FICLONE probe succeeded).
        public var reflink: Bool

        public init(jobUID: UInt32, baseOwner: UInt32, seederUID: UInt32, reflink: Bool) {
            self.jobUID = jobUID
            self.baseOwner = baseOwner
            self.seederUID = seederUID
            self.reflink = reflink
        }
    }

    /// Why hard links would be unsafe (or impossible) for these parties; nil when they are fine.
    public static func hardlinkObjection(_ p: Parties) -> String? {
        if p.jobUID == 0 {
            return "the job runs as root, which can write through a hard link into the base"
        }
        if p.jobUID == p.baseOwner {
            return "the job's uid \(p.jobUID) owns the base's files and could make them writable again"
        }
        if p.seederUID != 0 && p.seederUID != p.baseOwner {
            return "silo runs as uid \(p.seederUID), which may not link uid \(p.baseOwner)'s files (fs.protected_hardlinks); seed as root with --user"
        }
        return nil
    }

    /// The method for a seeding: `requested` when it is possible and safe, else an error naming
    /// why; with no request, the safest that applies.
    public static func choose(_ p: Parties, requested: SeedMethod?) throws(SiloError) -> SeedMethod {
        switch requested {
        case .reflink?:
            guard p.reflink else { throw SiloError("--seed reflink: the root's filesystem cannot reflink (FICLONE failed); use an XFS made with reflink=1 or btrfs, or --seed copy") }
            return .reflink
        case .hardlink?:
            if let why = hardlinkObjection(p) { throw SiloError("--seed hardlink is unsafe here: \(why); use --seed copy (or reflink on XFS/btrfs)") }
            return .hardlink
        case .copy?:
            return .copy
        case nil:
            if p.reflink { return .reflink }
            return hardlinkObjection(p) == nil ? .hardlink : .copy
        }
    }
}
