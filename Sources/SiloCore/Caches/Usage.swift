// What the root costs on disk, with shared bytes counted once.
//
// Seeded caches share inodes (hard links) or extents (reflinks) with their base, so adding up
// what `du` says of each cache counts the base once per cache: 45 caches seeded from one base
// would look like 45 copies. Three numbers tell the truth apart:
//   apparent  what a cache would take on its own (each inode once within it) -- what a copy costs;
//   unique    what only that cache holds: inodes whose every link is inside it, less extents it
//             shares by reflink -- what deleting it frees;
//   disk      what the whole root occupies, each inode and each shared extent once (one walk of
//             the whole root, so an inode linked from 45 caches and a base is one inode).

import SiloSystem

public struct RootUsage: Sendable, Encodable {
    public struct Caches: Sendable, Encodable {
        public var count = 0
        public var apparent_bytes: Int64 = 0
        public var unique_bytes: Int64 = 0
    }
    public struct Bases: Sendable, Encodable {
        public var generations = 0
        public var bytes: Int64 = 0
    }
    public var root: String
    /// Every block under the root once.
    public var disk_bytes: Int64 = 0
    public var caches = Caches()
    public var bases = Bases()
    public var trash_bytes: Int64 = 0
    public var filesystem_bytes: Int64 = 0
    public var available_bytes: Int64 = 0
    /// Directories on other mounts that were not counted.
    public var skipped_mounts: [String] = []

    /// Measures the root: the whole tree once, then each cache, base and the trash apart.
    public static func measure(_ root: SiloRoot) throws(SiloError) -> RootUsage {
        var usage = RootUsage(root: root.path)
        do {
            let whole = try TreeWalk.measure(root.path)
            usage.disk_bytes = whole.diskBytes
            usage.skipped_mounts = whole.skippedMounts
        } catch {
            throw SiloError("cannot measure root \(root.path): \(error)")
        }
        for (key, slot) in CacheLayout(root: root).completeSlots() {
            guard let w = try? TreeWalk.measure(root.slotPath(key, slot)) else { continue }
            usage.caches.count += 1
            usage.caches.apparent_bytes += w.bytes
            usage.caches.unique_bytes += w.uniqueBytes
        }
        let bases = BaseStore(root: root)
        for name in bases.names() {
            for g in bases.generations(name) {
                usage.bases.generations += 1
                usage.bases.bytes += (try? TreeWalk.measure(bases.path(BaseRef(name: name, generation: g))))?.diskBytes ?? 0
            }
        }
        usage.trash_bytes = (try? TreeWalk.measure(root.trashPath))?.diskBytes ?? 0
        if let space = try? FileSystem.space(root.path) {
            usage.filesystem_bytes = space.total
            usage.available_bytes = space.available
        }
        return usage
    }
}

extension CacheLayout {
    /// Every complete cache under the root, sorted by key then slot.
    public func completeSlots() -> [(CacheKey, Int)] {
        var out: [(CacheKey, Int)] = []
        for name in ((try? FileSystem.list(root.cachesPath)) ?? []).sorted() {
            guard let key = try? CacheKey(validating: name) else { continue }
            let slots = ((try? FileSystem.list(root.keyPath(key))) ?? []).compactMap { Int($0) }.sorted()
            for slot in slots where slot > 0 && Self.isComplete(root.slotPath(key, slot)) { out.append((key, slot)) }
        }
        return out
    }
}
