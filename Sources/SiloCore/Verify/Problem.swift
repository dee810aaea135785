// What `silo verify` reports: one problem per thing cargo trusts but should not, with the fix
// `--heal` applies. Kind names are stable (they are the JSON contract, docs/json.md).

public enum ProblemKind: String, Sendable, Encodable, CaseIterable {
    case markerMissing = "marker-missing"
    case markerInvalid = "marker-invalid"
    case fileMissing = "file-missing"
    case fileSizeMismatch = "file-size-mismatch"
    case fileTypeMismatch = "file-type-mismatch"
    case fileContentMismatch = "file-content-mismatch"
    case extraFile = "extra-file"
    case crateMissing = "crate-missing"
    case crateChecksumMismatch = "crate-checksum-mismatch"
    case crateUnreadableArchive = "crate-unreadable-archive"
    case indexCacheCorrupt = "index-cache-corrupt"
    case foreignOwner = "foreign-owner"
    case unreadable
    case unwritable
    case danglingBinLink = "dangling-bin-link"
    case orphanRegistry = "orphan-registry"
    case staleBuildOutput = "stale-build-output"
}

public enum Severity: String, Sendable, Encodable, Comparable {
    /// Cargo fails, or will, on this.
    case error
    /// Cargo copes today but something is wrong (it will need the network, another uid owns it).
    case warning
    /// Cargo repairs it itself; reported so nothing is hidden.
    case info

    var rank: Int { self == .error ? 0 : self == .warning ? 1 : 2 }
    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// What `--heal` does about a problem, as data: the Healer carries it out.
public enum Remedy: Sendable, Equatable, Hashable {
    /// Remove the crate's `.cargo-ok` marker, then its directory: cargo re-extracts it offline.
    case reextract(crateDir: String)
    /// Remove a bad `.crate`: cargo downloads it again (needs the network).
    case removeCrateFile(String)
    /// Remove a bad index cache entry: cargo fetches it again (needs the network).
    case removeIndexEntry(String)
    /// Give a tree back to uid:gid (fchownat, AT_SYMLINK_NOFOLLOW; root only).
    case chown(String)
    /// Remove a dangling symlink.
    case removeLink(String)
    /// Remove a directory cargo no longer uses.
    case removeTree(String)
    /// Remove a crate's build-script outputs and fingerprints from the target dir (what
    /// `cargo clean -p <package>` removes of them), so the next build redoes them.
    case cleanBuildOutputs(package: String)
    /// Nothing --heal can do; the detail says what would.
    case none

    public var summary: String {
        switch self {
        case .reextract: return "remove the crate dir (marker first); cargo re-extracts it offline from its .crate"
        case .removeCrateFile: return "remove the .crate; cargo downloads it again (needs the network)"
        case .removeIndexEntry: return "remove the index cache entry; cargo fetches it again (needs the network)"
        case .chown: return "chown to the runner uid (as root)"
        case .removeLink: return "remove the dangling link"
        case .removeTree: return "remove the orphaned directory"
        case .cleanBuildOutputs(let p): return "remove build-script output and fingerprints of \(p) (cargo clean -p \(p))"
        case .none: return "none"
        }
    }
}

public struct Problem: Sendable, Encodable {
    public var kind: ProblemKind
    public var severity: Severity
    public var crate: String?
    public var path: String
    public var detail: String
    public var fix: String
    public var healed: Bool?
    let remedy: Remedy

    init(_ kind: ProblemKind, _ severity: Severity, crate: String?, path: String, detail: String, remedy: Remedy) {
        self.kind = kind
        self.severity = severity
        self.crate = crate
        self.path = path
        self.detail = detail
        self.remedy = remedy
        fix = remedy.summary
    }

    enum CodingKeys: String, CodingKey { case kind, severity, crate, path, detail, fix, healed }
}
