// Bases: read-only snapshots of a trusted key's CARGO_HOME that new caches start from.
//
//   <root>/bases/<name>/<generation>/BASE    manifest (JSON), written last, before the rename
//   <root>/bases/<name>/<generation>/home    registry/, git/ and .global-cache of the promoted key
//   <root>/bases/<name>/<generation>/target  only when promoted --with-target
//   <root>/bases/<name>/.new-<pid>           a promotion being built, invisible until renamed
//
// A base is never changed once renamed into place: promoting again builds generation N+1 beside
// it, and "the base NAME" is its highest complete generation. Older generations are retired: no
// new cache starts from one, but caches seeded from it share its inodes, so reap collects a retired
// generation only when no cache names it in its marker (`"base":"NAME/N"`) -- until then deleting
// it would free nothing and lose the record of what those caches share.
//
// Concurrency: a seeder holds the generation directory with a shared flock(2) while it clones;
// reap takes it exclusive without waiting before tombstoning it, so a base is never deleted under
// a seeding. Promotions of one name serialize on an exclusive flock of `bases/<name>`.

import SiloSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What `BASE` says about one generation. Field names are on-disk format.
public struct BaseManifest: Codable, Sendable, Equatable {
    public var name: String
    public var generation: Int
    public var key: String
    public var slot: Int
    public var created: Double
    public var with_target: Bool
    /// The uid that owns every file of the base (the promoter); jobs of this uid are never given hard links.
    public var owner: UInt32
    /// How the key's files were copied into the base: reflink or copy.
    public var method: String
    public var files: Int
}

/// One generation of a base, "name/generation" in text.
public struct BaseRef: Sendable, Hashable, CustomStringConvertible {
    public let name: CacheKey
    public let generation: Int
    public init(name: CacheKey, generation: Int) { self.name = name; self.generation = generation }
    public var description: String { "\(name)/\(generation)" }

    public init?(parsing text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let name = try? CacheKey(validating: String(parts[0])), let g = Int(parts[1]), g > 0 else { return nil }
        self.init(name: name, generation: g)
    }
}

/// A generation held against collection while a cache is seeded from it.
public final class BaseHold {
    public let ref: BaseRef
    public let manifest: BaseManifest
    public let path: String
    let fd: FileDescriptor
    init(ref: BaseRef, manifest: BaseManifest, path: String, fd: FileDescriptor) {
        self.ref = ref; self.manifest = manifest; self.path = path; self.fd = fd
    }
    deinit { fd.close() }
    public var home: String { path + "/home" }
    public var target: String? { manifest.with_target ? path + "/target" : nil }
}

public struct BaseStore: Sendable {
    public let root: SiloRoot
    public static let manifestFile = "BASE"
    static let stagingPrefix = ".new-"

    public init(root: SiloRoot) { self.root = root }

    public var basesPath: String { root.path + "/bases" }
    public func namePath(_ name: CacheKey) -> String { basesPath + "/" + name.rawValue }
    public func path(_ ref: BaseRef) -> String { namePath(ref.name) + "/\(ref.generation)" }

    /// Every base name on disk, sorted.
    public func names() -> [CacheKey] {
        ((try? FileSystem.list(basesPath)) ?? []).sorted().compactMap { try? CacheKey(validating: $0) }
    }

    /// The complete generations of `name` (those with a manifest), oldest first.
    public func generations(_ name: CacheKey) -> [Int] {
        ((try? FileSystem.list(namePath(name))) ?? []).compactMap { entry -> Int? in
            guard let g = Int(entry), g > 0, String(g) == entry else { return nil }
            return (try? FileSystem.status(namePath(name) + "/\(g)/" + Self.manifestFile))??.isRegular == true ? g : nil
        }.sorted()
    }

    /// The generation new caches of base `name` start from: the newest.
    public func current(_ name: CacheKey) -> BaseRef? {
        generations(name).last.map { BaseRef(name: name, generation: $0) }
    }

    public func manifest(_ ref: BaseRef) -> BaseManifest? {
        guard let text = (try? FileSystem.read(path(ref) + "/" + Self.manifestFile)) ?? nil else { return nil }
        return try? JSONDecoder().decode(BaseManifest.self, from: Data(text.utf8))
    }

    /// The current generation of `name`, held (shared flock) until the hold is released. Nil when
    /// the base does not exist. A generation tombstoned between lookup and lock is looked up again.
    public func hold(_ name: CacheKey) throws(SiloError) -> BaseHold? {
        for _ in 0..<5 {
            guard let ref = current(name) else { return nil }
            let p = path(ref)
            guard let fd = try? FileDescriptor.open(p, [.readOnly, .directory, .noFollow, .closeOnExec]) else { continue }
            do { try fd.lock(.shared) } catch { fd.close(); throw SiloError("cannot lock base \(p): \(error)") }
            // Still at its path after the lock: not moved to the trash by a collector meanwhile.
            guard let here = try? FileSystem.status(p), let held = try? fd.stat(), here.inode == held.inode, here.device == held.device,
                  let manifest = manifest(ref) else { fd.close(); continue }
            return BaseHold(ref: ref, manifest: manifest, path: p, fd: fd)
        }
        throw SiloError("base '\(name)' kept changing while silo tried to hold it; try again")
    }

    /// A generation directory held exclusive (no seeding uses it), for the collector. Nil when busy.
    func tryHoldExclusive(_ ref: BaseRef) -> FileDescriptor? {
        guard let fd = try? FileDescriptor.open(path(ref), [.readOnly, .directory, .noFollow, .closeOnExec]) else { return nil }
        if (try? fd.tryLock(.exclusive)) == true { return fd }
        fd.close()
        return nil
    }

    /// Staging directories of promotions whose process is gone: `bases/<name>/.new-<pid>`.
    public func abandonedStaging() -> [String] {
        var out: [String] = []
        for name in names() {
            for entry in (try? FileSystem.list(namePath(name))) ?? [] where entry.hasPrefix(Self.stagingPrefix) {
                if let pid = Int32(entry.dropFirst(Self.stagingPrefix.count)), Identity.processExists(pid) { continue }
                out.append(namePath(name) + "/" + entry)
            }
        }
        return out.sorted()
    }
}
