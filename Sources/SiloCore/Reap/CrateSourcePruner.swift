// `reap --max-src-age`: extracted crate sources unused for that long go, inside a cache that stays.
//
// Only `registry/src/<reg>/<name>-<version>` directories, whole: cargo re-extracts one from its
// `.crate` (offline, no network) when the directory is gone. Never the `.crate` files and never the
// index: without the .crate cargo must download again, and without the index cache `--offline`
// resolution breaks.
//
// Last use is cargo's own: the `registry_src` table of `$CARGO_HOME/.global-cache` (cargo >= 1.78),
// not mtimes (extracted files carry their archive's 2006 mtime). A crate the table does not list
// is left alone.
//
// Cargo is kept out while this runs by taking its MutateExclusive lock the way cargo does:
// flock `.package-cache-mutate` exclusive first, then `.package-cache` exclusive, both without
// blocking. A build holds the mutate lock shared for its whole run, so a busy cache is skipped and
// reported, never waited for. Per crate: the `.cargo-ok` marker is removed first (so an interrupted
// removal is an extraction cargo redoes, never a trusted half-tree), the directory is renamed into
// silo's trash, and its row is deleted.

import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

public struct PrunedSource: Sendable, Equatable, Encodable {
    public var key: String
    public var slot: Int
    public var registry: String
    public var crate: String
    public var last_used: Int64
    public var action: String
}

public enum CrateSourcePruner {
    public enum Outcome: Sendable {
        case pruned([PrunedSource], trashEntries: [String])
        /// Nothing done, with the reason (a build holds cargo's lock; no last-use table).
        case skipped(String)
    }

    /// Cargo's lock files, in the order cargo takes them for MutateExclusive.
    static let lockOrder = [".package-cache-mutate", ".package-cache"]

    public static func prune(home: String, key: CacheKey, slot: Int, maxAge: Double, now: Double,
                             trash: Trash, dryRun: Bool) throws(SiloError) -> Outcome {
        let tablePath = home + "/.global-cache"
        guard (try? FileSystem.status(tablePath))??.isRegular == true else {
            return .skipped("no cargo last-use table (\(tablePath)); cargo >= 1.78 writes one")
        }
        var held: [FileDescriptor] = []
        defer { for fd in held.reversed() { fd.close() } }
        for name in lockOrder {
            let path = home + "/" + name
            let fd: FileDescriptor
            do { fd = try FileDescriptor.open(path, [.readOnly, .noFollow, .closeOnExec]) } catch {
                return .skipped("cannot open cargo's lock \(path): \(error)")
            }
            held.append(fd)
            let taken: Bool
            do { taken = try fd.tryLock(.exclusive) } catch { return .skipped("cannot lock \(path): \(error)") }
            if !taken { return .skipped("a cargo process holds \(path); skipped, not waited for") }
        }

        let db: SQLiteConnection
        do { db = try SQLiteConnection(path: tablePath, busyTimeoutMilliseconds: 1000, access: dryRun ? .immutable : .readWrite) } catch {
            return .skipped("cannot open \(tablePath): \(error)")
        }
        let cutoff = now - maxAge
        let rows: [Row]
        do {
            rows = try db.query("""
                SELECT i.name, s.name, s.timestamp, s.registry_id FROM registry_src s
                JOIN registry_index i ON i.id = s.registry_id
                WHERE s.timestamp < ? ORDER BY s.timestamp, i.name, s.name
                """, [.integer(Int64(cutoff.rounded(.down)))])
        } catch {
            return .skipped("cannot read \(tablePath): \(error)")
        }
        var pruned: [PrunedSource] = []
        var trashEntries: [String] = []
        for row in rows {
            guard let registry = row.text(0), let crate = row.text(1), let stamp = row.int(2), let registryID = row.int(3),
                  isPlainName(registry), isPlainName(crate) else { continue }
            let dir = home + "/registry/src/" + registry + "/" + crate
            var entry = PrunedSource(key: key.rawValue, slot: slot, registry: registry, crate: crate, last_used: stamp, action: dryRun ? "would-delete" : "deleted")
            guard (try? FileSystem.status(dir))??.isDirectory == true else { continue }
            if !dryRun {
                do {
                    if unlink(dir + "/.cargo-ok") != 0 && errno != ENOENT { throw Errno.current("unlink", path: dir + "/.cargo-ok") }
                    trashEntries.append(try trash.tombstone(dir, label: "src.\(key).\(slot).\(crate)"))
                    try db.query("DELETE FROM registry_src WHERE registry_id = ? AND name = ?", [.integer(registryID), .text(crate)])
                } catch {
                    entry.action = "failed: \(error)"
                }
            }
            pruned.append(entry)
        }
        return .pruned(pruned, trashEntries: trashEntries)
    }

    /// A registry or crate directory name as cargo writes it: one path component, nothing that walks.
    static func isPlainName(_ s: String) -> Bool {
        !s.isEmpty && s != "." && s != ".." && !s.contains("/") && !s.contains("\0")
    }
}
