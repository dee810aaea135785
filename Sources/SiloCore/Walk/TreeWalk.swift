// One walk of a directory tree, shared by measuring (`du`) and deleting (`rm -rf`), on every core.
//
// silo runs as root over trees that untrusted jobs wrote, so the walk resolves no path twice:
// every directory is opened with openat(O_NOFOLLOW|O_DIRECTORY) relative to its parent's descriptor,
// every entry is looked at with statx(AT_SYMLINK_NOFOLLOW) relative to that descriptor, and removal
// is unlinkat relative to it. A symlink is an entry like any other (removed as a link, its target
// never touched). A directory on another mount than the tree's top -- another filesystem, or a bind
// mount of the same one, told apart by statx's mount id -- is left alone and reported.
//
// Parallelism: directories are work items on one stack shared by N workers. A directory finishes
// when its own entries are handled and every subdirectory has finished; the worker that finishes
// the last piece removes it (post-order) and then checks its parent. Open descriptors are bounded
// by the directories in progress, not by the size of the tree, because pending subdirectories are
// kept as (parent, name) and opened only when a worker takes them.
//
// Trade-off: removal does not stat files (like `rm -rf`, it trusts readdir's d_type), so a removal
// reports how many entries it removed but not their bytes; callers that need bytes measure first.

import SiloSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Something the walk could not get past: the entry's path and the failed call.
public struct WalkFailure: Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let error: Errno
    public var description: String { "\(path): \(error.call): \(error.message) (os error \(error.code))" }
}

/// What a walk saw or did.
public struct WalkReport: Sendable, Equatable {
    /// Non-directory entries (files, symlinks, sockets ...) counted, or removed when removing.
    public var files = 0
    public var directories = 0
    /// Allocated bytes, each inode once (measuring only): what the tree would take as a copy.
    public var bytes: Int64 = 0
    /// Allocated bytes only this tree holds, what deleting it frees: inodes whose every link is
    /// inside it, less extents a reflink shares with another file (measuring only).
    public var uniqueBytes: Int64 = 0
    /// What the tree occupies on disk, each block once: `bytes` with reflinked extents that files
    /// of the tree share counted once (measuring only; equals `bytes` where there is no reflink).
    public var diskBytes: Int64 = 0
    /// Sum of st_size (measuring only).
    public var apparentBytes: Int64 = 0
    /// Changing owners: files with a link outside the tree (a base's inode, shared by a hard link;
    /// anything linked in from elsewhere), left as they are.
    public var sharedSkipped = 0
    /// Measuring: inodes with several links, every one of them inside the tree.
    var containedLinkedInodes: Set<UInt64> = []
    /// Directories on another mount, left alone.
    public var skippedMounts: [String] = []
    public var failures: [WalkFailure] = []

    public var complete: Bool { skippedMounts.isEmpty && failures.isEmpty }

    public mutating func merge(_ other: WalkReport) {
        files += other.files
        directories += other.directories
        bytes += other.bytes
        uniqueBytes += other.uniqueBytes
        diskBytes += other.diskBytes
        apparentBytes += other.apparentBytes
        sharedSkipped += other.sharedSkipped
        skippedMounts += other.skippedMounts
        failures += other.failures
    }
}

public enum TreeWalk {
    public enum Mode: Sendable, Equatable {
        case measure, remove
        /// fchownat(AT_SYMLINK_NOFOLLOW) of every entry not already owned so; `files` counts changes.
        case chown(uid: UInt32, gid: UInt32)
    }

    /// Workers per walk: deletion and stat are kernel-bound, so one per core; more than 4 only adds
    /// contention on the filesystem's locks.
    static let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 4))

    /// Measures the tree at `path` (du -s: allocated bytes of every entry, each inode once).
    /// A missing path measures zero.
    public static func measure(_ path: String) throws(Errno) -> WalkReport {
        try run(path, .measure)
    }

    /// Removes the tree at `path`: everything below it on the same mount, then `path` itself unless
    /// something below had to stay (a mount point, an entry silo may not delete).
    public static func remove(_ path: String) throws(Errno) -> WalkReport {
        try run(path, .remove)
    }

    /// Gives every entry of the tree at `path` (itself included) to uid:gid, never following a
    /// symlink (a link is changed itself) and never crossing into another mount. A file with more
    /// than one link is changed only when every link is inside the tree: chown acts on the inode,
    /// so changing one linked in from outside (a base's read-only inode, a file someone hard-linked
    /// in) would change it there too. A first, measuring walk counts the links.
    public static func changeOwner(_ path: String, uid: UInt32, gid: UInt32) throws(Errno) -> WalkReport {
        let counted = try run(path, .measure)
        return try run(path, .chown(uid: uid, gid: gid), contained: counted.containedLinkedInodes)
    }

    static func run(_ path: String, _ mode: Mode, contained: Set<UInt64> = []) throws(Errno) -> WalkReport {
        let (parentPath, name) = splitPath(path)
        let parent = try FileDescriptor.open(parentPath, [.readOnly, .directory, .closeOnExec])
        defer { parent.close() }
        let st: FileStat
        do { st = try parent.statAt(name) } catch where error.code == ENOENT { return WalkReport() }
        var report = WalkReport()
        if case .chown(let uid, let gid) = mode, st.uid != uid || st.gid != gid, st.isDirectory || st.links <= 1 {
            try parent.changeOwnerAt(name, uid: uid, gid: gid)
            report.files += 1
        }
        guard st.isDirectory else {
            if case .chown = mode { return report }
            if mode == .remove {
                try parent.unlinkAt(name)
            } else {
                report.bytes = st.allocatedBytes
                report.uniqueBytes = st.links > 1 ? 0 : st.allocatedBytes
                report.diskBytes = st.allocatedBytes
                report.apparentBytes = st.size
            }
            report.files = 1
            return report
        }
        let walk = Walk(mode: mode, top: st)
        walk.contained = contained
        walk.extentAware = mode == .measure && FileSystem.reflinkFilesystems.contains((try? FileSystem.filesystemType(path)) ?? 0)
        let top = DirectoryNode(fd: parent, stat: st, parent: nil, name: parentPath, path: parentPath)
        walk.push([(top, name)])
        DispatchQueue.concurrentPerform(iterations: workers) { walk.work(worker: $0) }
        return walk.finish()
    }

    static func splitPath(_ path: String) -> (String, String) {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        guard let slash = p.lastIndex(of: "/") else { return (".", String(p)) }
        let parent = String(p[..<slash])
        return (parent.isEmpty ? "/" : parent, String(p[p.index(after: slash)...]))
    }
}

/// A directory being walked. Mutable fields are guarded by the walk's lock.
final class DirectoryNode: @unchecked Sendable {
    let fd: FileDescriptor
    let stat: FileStat
    let parent: DirectoryNode?
    let name: String
    let path: String
    /// This directory's own entries (1) plus subdirectories not yet finished.
    var outstanding = 1
    /// Something below could not be removed, so this directory cannot be either.
    var keep = false

    init(fd: FileDescriptor, stat: FileStat, parent: DirectoryNode?, name: String, path: String) {
        self.fd = fd
        self.stat = stat
        self.parent = parent
        self.name = name
        self.path = path
    }
}

/// An inode with more than one link, as one worker saw it.
struct LinkedInode {
    var allocated: Int64
    /// Of `allocated`, bytes in extents a reflink shares.
    var shared: Int64
    var links: UInt64
    /// Links found inside the tree.
    var seen: UInt64
}

/// What one worker counted; merged at the end so that counting takes no lock.
struct WorkerTally {
    var report = WalkReport()
    /// Inodes with more than one link, counted once across all workers after the walk.
    var multiLinked: [UInt64: LinkedInode] = [:]
    /// Reflinked extents (physical offset -> length), counted once across all workers.
    var sharedExtents: [UInt64: UInt64] = [:]
}

final class Walk: @unchecked Sendable {
    let mode: TreeWalk.Mode
    let top: FileStat
    let isRoot = geteuid() == 0
    /// Look at each file's extents (FIEMAP), on filesystems where files can share them.
    var extentAware = false
    /// Changing owners: the multi-linked inodes whose every link is inside the tree.
    var contained: Set<UInt64> = []
    let lock = NSCondition()
    var pending: [(DirectoryNode, String)] = []
    var busy = 0
    var tallies: [WorkerTally]

    init(mode: TreeWalk.Mode, top: FileStat) {
        self.mode = mode
        self.top = top
        tallies = Array(repeating: WorkerTally(), count: TreeWalk.workers)
    }

    func push(_ items: [(DirectoryNode, String)]) {
        lock.lock()
        pending.append(contentsOf: items)
        lock.broadcast()
        lock.unlock()
    }

    /// A worker: takes directories until none is pending and none is being worked on.
    func work(worker: Int) {
        var tally = WorkerTally()
        while true {
            lock.lock()
            while pending.isEmpty && busy > 0 { lock.wait() }
            guard let (parent, name) = pending.popLast() else {
                lock.broadcast()
                lock.unlock()
                break
            }
            busy += 1
            lock.unlock()
            visit(parent: parent, name: name, tally: &tally)
            lock.lock()
            busy -= 1
            lock.broadcast()
            lock.unlock()
        }
        lock.lock()
        tallies[worker] = tally
        lock.unlock()
    }

    func finish() -> WalkReport {
        var report = WalkReport()
        var inodes: [UInt64: LinkedInode] = [:]
        var extents: [UInt64: UInt64] = [:]
        for t in tallies {
            report.merge(t.report)
            inodes.merge(t.multiLinked) { a, b in var m = a; m.seen += b.seen; return m }
            extents.merge(t.sharedExtents) { a, b in max(a, b) }
        }
        for (number, inode) in inodes {
            if inode.seen >= inode.links { report.containedLinkedInodes.insert(number) }
            report.bytes += inode.allocated
            report.diskBytes += inode.allocated - inode.shared
            if inode.seen >= inode.links { report.uniqueBytes += inode.allocated - inode.shared }
        }
        report.diskBytes += Int64(extents.values.reduce(0, +))
        report.skippedMounts.sort()
        report.failures.sort { $0.path < $1.path }
        return report
    }

    /// Opens `parent/name`, handles its entries, queues its subdirectories.
    func visit(parent: DirectoryNode, name: String, tally: inout WorkerTally) {
        let path = parent.path + "/" + name
        let fd: FileDescriptor
        do {
            fd = try openDirectory(parent: parent, name: name)
        } catch {
            switch error.code {
            case ENOENT:
                break // removed meanwhile
            case ENOTDIR, ELOOP:
                // Replaced by a file or a symlink since the listing: an entry like any other.
                handleEntry(parent: parent, FileSystem.Entry(name: name, type: UInt8(DT_UNKNOWN)), tally: &tally)
            default:
                fail(path, error, keep: parent, tally: &tally)
            }
            return complete(parent, tally: &tally)
        }
        let st: FileStat
        do { st = try fd.stat() } catch {
            fd.close()
            fail(path, error, keep: parent, tally: &tally)
            return complete(parent, tally: &tally)
        }
        if top.isOtherMount(st) {
            fd.close()
            lock.lock(); parent.keep = true; lock.unlock()
            tally.report.skippedMounts.append(path)
            return complete(parent, tally: &tally)
        }
        let node = DirectoryNode(fd: fd, stat: st, parent: parent, name: name, path: path)
        tally.report.directories += 1
        if mode == .measure { count(st, in: nil, tally: &tally) }
        if case .chown(let uid, let gid) = mode, node.parent?.parent != nil, st.uid != uid || st.gid != gid {
            // (The top directory was changed before the walk started.)
            do { try parent.fd.changeOwnerAt(name, uid: uid, gid: gid); tally.report.files += 1 } catch { fail(path, error, keep: parent, tally: &tally) }
        }
        let entries: [FileSystem.Entry]
        do { entries = try FileSystem.entries(fd: try fd.duplicate(), path: path) } catch {
            fail(path, error, keep: node, tally: &tally)
            return complete(node, tally: &tally)
        }
        var subdirectories: [(DirectoryNode, String)] = []
        for entry in entries {
            if entry.isDirectory {
                subdirectories.append((node, entry.name))
            } else if entry.typeUnknown || mode != .remove {
                // d_type unknown, or measuring or changing owners (which need the stat): look first.
                guard let st = try? fd.statAt(entry.name) else { continue } // removed meanwhile
                if st.isDirectory { subdirectories.append((node, entry.name)); continue }
                if case .chown(let uid, let gid) = mode {
                    if top.isOtherMount(st) { continue }
                    if !st.isDirectory && st.links > 1 && !contained.contains(st.inode) { tally.report.sharedSkipped += 1; continue }
                    if st.uid != uid || st.gid != gid {
                        do { try fd.changeOwnerAt(entry.name, uid: uid, gid: gid); tally.report.files += 1 } catch { fail(path + "/" + entry.name, error, keep: node, tally: &tally) }
                    }
                } else if mode == .measure {
                    if top.isOtherMount(st) { tally.report.skippedMounts.append(path + "/" + entry.name); continue }
                    tally.report.files += 1
                    count(st, in: (fd, entry.name), tally: &tally)
                } else {
                    handleEntry(parent: node, entry, tally: &tally)
                }
            } else {
                handleEntry(parent: node, entry, tally: &tally)
            }
        }
        if !subdirectories.isEmpty {
            lock.lock()
            node.outstanding += subdirectories.count
            pending.append(contentsOf: subdirectories)
            lock.broadcast()
            lock.unlock()
        }
        complete(node, tally: &tally)
    }

    func openDirectory(parent: DirectoryNode, name: String) throws(Errno) -> FileDescriptor {
        do {
            return try parent.fd.openAt(name, [.readOnly, .directory, .noFollow, .closeOnExec])
        } catch where error.code == EACCES && mode == .remove && !isRoot {
            // A directory of ours without r or x (a job's chmod 0000): give ourselves access, once.
            try grantOwnerAccess(parent: parent, name: name)
            return try parent.fd.openAt(name, [.readOnly, .directory, .noFollow, .closeOnExec])
        }
    }

    /// chmod u+rwx of `parent/name` when it is a directory the effective uid owns. Goes through an
    /// O_PATH descriptor of exactly that directory, so a swapped-in symlink is never followed.
    func grantOwnerAccess(parent: DirectoryNode, name: String) throws(Errno) {
        let handle = try parent.fd.openAt(name, [.path, .directory, .noFollow, .closeOnExec])
        defer { handle.close() }
        let st = try handle.stat()
        guard st.uid == geteuid() else { throw Errno(EACCES, call: "openat", path: name) }
        try handle.changeMode(mode_t(st.permissions | 0o700))
    }

    /// Removes a non-directory entry (removing), or counts it (measuring an entry whose type
    /// readdir gave).
    func handleEntry(parent: DirectoryNode, _ entry: FileSystem.Entry, tally: inout WorkerTally) {
        guard mode == .remove else { return }
        do {
            try parent.fd.unlinkAt(entry.name)
            tally.report.files += 1
        } catch where error.code == ENOENT {
        } catch where error.code == EISDIR {
            // Was a file at listing time, is a directory now: walk it.
            lock.lock()
            parent.outstanding += 1
            pending.append((parent, entry.name))
            lock.broadcast()
            lock.unlock()
        } catch where (error.code == EACCES || error.code == EPERM) && retryWritable(parent) {
            do { try parent.fd.unlinkAt(entry.name); tally.report.files += 1 } catch {
                fail(parent.path + "/" + entry.name, error, keep: parent, tally: &tally)
            }
        } catch {
            fail(parent.path + "/" + entry.name, error, keep: parent, tally: &tally)
        }
    }

    /// Makes a read-only directory of ours writable so its entries can go (not as root: root
    /// needs no permission, and a directory root may not write is on a read-only mount).
    func retryWritable(_ dir: DirectoryNode) -> Bool {
        guard !isRoot, dir.stat.uid == geteuid() else { return false }
        return (try? dir.fd.changeMode(mode_t(dir.stat.permissions | 0o700))) != nil
    }

    /// Counts one entry; `file` is its directory and name, for a look at its extents.
    func count(_ st: FileStat, in file: (FileDescriptor, String)?, tally: inout WorkerTally) {
        tally.report.apparentBytes += st.size
        var shared: Int64 = 0
        if extentAware, st.isRegular, st.blocks > 0, let (dir, name) = file,
           let fd = try? dir.openAt(name, [.readOnly, .noFollow, .closeOnExec]) {
            for e in (try? fd.extents()) ?? [] where e.shared {
                shared += Int64(e.length)
                tally.sharedExtents[e.physical] = max(tally.sharedExtents[e.physical] ?? 0, e.length)
            }
            fd.close()
            shared = min(shared, st.allocatedBytes)
        }
        if st.links > 1 && !st.isDirectory {
            if var known = tally.multiLinked[st.inode] {
                known.seen += 1
                tally.multiLinked[st.inode] = known
            } else {
                tally.multiLinked[st.inode] = LinkedInode(allocated: st.allocatedBytes, shared: shared, links: st.links, seen: 1)
            }
        } else {
            tally.report.bytes += st.allocatedBytes
            tally.report.uniqueBytes += st.allocatedBytes - shared
            tally.report.diskBytes += st.allocatedBytes - shared
        }
    }

    /// A read-only file with more than one link: the sign of a hard link into a base (promotion
    /// clears the write bits). Giving it to the runner would give the runner every cache's copy.
    static func isSharedWithBase(_ st: FileStat) -> Bool {
        st.isRegular && st.links > 1 && st.permissions & 0o222 == 0
    }

    func fail(_ path: String, _ error: Errno, keep node: DirectoryNode, tally: inout WorkerTally) {
        tally.report.failures.append(WalkFailure(path: path, error: error))
        lock.lock(); node.keep = true; lock.unlock()
    }

    /// One piece of `node` is done; when it was the last, the directory is finished: removed
    /// (removing, unless something below stays), its descriptor closed, and its parent told.
    func complete(_ node: DirectoryNode, tally: inout WorkerTally) {
        var current: DirectoryNode? = node
        while let n = current {
            lock.lock()
            n.outstanding -= 1
            let finished = n.outstanding == 0
            let keep = n.keep
            lock.unlock()
            guard finished, let parent = n.parent else { return }
            if mode == .remove && !keep {
                do {
                    try parent.fd.unlinkAt(n.name, directory: true)
                } catch where (error.code == EACCES || error.code == EPERM) && retryWritable(parent) {
                    do { try parent.fd.unlinkAt(n.name, directory: true) } catch { fail(n.path, error, keep: parent, tally: &tally) }
                } catch where error.code != ENOENT {
                    fail(n.path, error, keep: parent, tally: &tally)
                } catch {}
            } else if keep {
                lock.lock(); parent.keep = true; lock.unlock()
            }
            n.fd.close()
            current = parent
        }
    }
}
