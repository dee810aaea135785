// Copying a directory tree into a new one on the same filesystem, by reflink, hard link or copy,
// on every core: what seeding a cache from a base and promoting a key into a base both do.
//
// Like TreeWalk, it resolves no path twice: source and destination directories are opened with
// openat(O_NOFOLLOW|O_DIRECTORY) relative to their parents, files with O_NOFOLLOW, entries are
// looked at with statx(AT_SYMLINK_NOFOLLOW). A symlink is recreated as a link (or skipped), never
// followed; sockets, fifos and devices are skipped; a directory on another mount is skipped.
//
// All or nothing: the first error (ENOSPC above all) stops every worker and is thrown; the caller
// builds into a staging directory and removes it, so a half-made tree is never visible.
//
// Open descriptors: a pending subdirectory is kept as (its parent's handle, name) and opened only
// when a worker takes it; a handle closes its two descriptors when the last pending child that
// needs it is gone (deinit), so the count stays near the tree's depth, not its width.

import SiloSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct CloneOptions: Sendable {
    public var method: SeedMethod
    /// Hard-link mode only: which files share the source's inode, by path relative to the top.
    public var action: @Sendable (String) -> SeedAction = SeedPolicy.action(forHomePath:)
    /// Only these top-level names are cloned (nil: all).
    public var topLevel: Set<String>?
    /// Give what is created (not what is linked) to this uid:gid.
    public var owner: (uid: UInt32, gid: UInt32)?
    /// Clear the write bits of every file created (a base), instead of setting the owner's (a cache).
    public var readOnly = false
    /// Leave symlinks out instead of recreating them.
    public var skipSymlinks = false
    /// Told of every file done (a terminal's progress line).
    public var progress: Progress?

    public init(method: SeedMethod) { self.method = method }
}

public struct CloneReport: Sendable, Equatable {
    public var directories = 0
    public var linked = 0
    public var reflinked = 0
    public var copied = 0
    public var bytesCopied: Int64 = 0
    public var symlinks = 0
    /// Hard links the kernel refused (EPERM, EMLINK): copied instead.
    public var linkFallbacks = 0
    /// Entries left out: symlinks when skipped, sockets, fifos, devices, other mounts.
    public var skipped: [String] = []

    public var files: Int { linked + reflinked + copied }

    mutating func merge(_ o: CloneReport) {
        directories += o.directories; linked += o.linked; reflinked += o.reflinked; copied += o.copied
        bytesCopied += o.bytesCopied; symlinks += o.symlinks; linkFallbacks += o.linkFallbacks; skipped += o.skipped
    }
}

public enum TreeClone {
    /// Whether `directory`'s filesystem can reflink: clones a probe file inside it.
    public static func reflinkSupported(in directory: String) -> Bool {
        guard let dir = try? FileDescriptor.open(directory, [.readOnly, .directory, .noFollow, .closeOnExec]) else { return false }
        defer { dir.close() }
        let a = ".silo-reflink-probe-\(getpid())-a", b = ".silo-reflink-probe-\(getpid())-b"
        defer { _ = try? dir.unlinkAt(a); _ = try? dir.unlinkAt(b) }
        guard let src = try? dir.openAt(a, [.readWrite, .create, .truncate, .noFollow, .closeOnExec], mode: 0o600) else { return false }
        defer { src.close() }
        guard (try? src.writeAll("silo")) != nil, let dst = try? dir.openAt(b, [.writeOnly, .create, .truncate, .noFollow, .closeOnExec], mode: 0o600) else { return false }
        defer { dst.close() }
        return (try? dst.cloneContents(from: src)) != nil
    }

    /// Clones the tree below `source` into the existing, empty directory `destination`.
    public static func run(from source: String, into destination: String, _ options: CloneOptions) throws(Errno) -> CloneReport {
        let src = try FileDescriptor.open(source, [.readOnly, .directory, .noFollow, .closeOnExec])
        let dst: FileDescriptor
        do { dst = try FileDescriptor.open(destination, [.readOnly, .directory, .noFollow, .closeOnExec]) } catch { src.close(); throw error }
        let top = DirectoryPair(source: src, destination: dst, relative: "", parent: nil)
        let clone = Clone(options: options, top: try src.stat())
        clone.push([(top, nil)])
        DispatchQueue.concurrentPerform(iterations: TreeWalk.workers) { _ in clone.work() }
        return try clone.finish()
    }
}

/// A source directory and its copy, both open. Closed when the last reference goes.
final class DirectoryPair: @unchecked Sendable {
    let source: FileDescriptor
    let destination: FileDescriptor
    let relative: String
    let parent: DirectoryPair?
    init(source: FileDescriptor, destination: FileDescriptor, relative: String, parent: DirectoryPair?) {
        self.source = source
        self.destination = destination
        self.relative = relative
        self.parent = parent
    }
    deinit { source.close(); destination.close() }
}

final class Clone: @unchecked Sendable {
    let options: CloneOptions
    let top: FileStat
    let lock = NSCondition()
    /// (parent, name): a subdirectory to create and fill; (top, nil): the top itself.
    var pending: [(DirectoryPair, String?)] = []
    var busy = 0
    var report = CloneReport()
    var failure: Errno?

    init(options: CloneOptions, top: FileStat) {
        self.options = options
        self.top = top
    }

    func push(_ items: [(DirectoryPair, String?)]) {
        lock.lock(); pending.append(contentsOf: items); lock.broadcast(); lock.unlock()
    }

    func work() {
        var tally = CloneReport()
        while true {
            lock.lock()
            while pending.isEmpty && busy > 0 && failure == nil { lock.wait() }
            guard failure == nil, let (parent, name) = pending.popLast() else {
                pending.removeAll()
                lock.broadcast(); lock.unlock()
                break
            }
            busy += 1
            lock.unlock()
            do {
                try visit(parent, name, &tally)
            } catch {
                lock.lock(); if failure == nil { failure = error }; lock.unlock()
            }
            lock.lock(); busy -= 1; lock.broadcast(); lock.unlock()
        }
        lock.lock(); report.merge(tally); lock.unlock()
    }

    func finish() throws(Errno) -> CloneReport {
        if let failure { throw failure }
        report.skipped.sort()
        return report
    }

    /// Creates the copy of `parent/name` (or takes the top), then handles its entries.
    func visit(_ parent: DirectoryPair, _ name: String?, _ tally: inout CloneReport) throws(Errno) {
        let pair: DirectoryPair
        if let name {
            let relative = parent.relative.isEmpty ? name : parent.relative + "/" + name
            let src = try parent.source.openAt(name, [.readOnly, .directory, .noFollow, .closeOnExec])
            let st: FileStat
            do { st = try src.stat() } catch { src.close(); throw error }
            if top.isOtherMount(st) { src.close(); tally.skipped.append(relative); return }
            let dst: FileDescriptor
            do {
                try parent.destination.makeDirectoryAt(name, mode: 0o700)
                dst = try parent.destination.openAt(name, [.readOnly, .directory, .noFollow, .closeOnExec])
            } catch { src.close(); throw error }
            pair = DirectoryPair(source: src, destination: dst, relative: relative, parent: parent)
            try finishCreated(dst, like: st, directory: true)
            tally.directories += 1
        } else {
            pair = parent
        }
        var subdirectories: [(DirectoryPair, String?)] = []
        for entry in try FileSystem.entries(fd: try pair.source.duplicate(), path: pair.relative) {
            if pair.relative.isEmpty, let allowed = options.topLevel, !allowed.contains(entry.name) { continue }
            let relative = pair.relative.isEmpty ? entry.name : pair.relative + "/" + entry.name
            if entry.isDirectory { subdirectories.append((pair, entry.name)); continue }
            // A regular file (readdir says so) that is linked needs no stat: linkat is all of it.
            if entry.type == UInt8(DT_REG) && options.method == .hardlink && options.action(relative) == .share,
               (try? pair.source.linkAt(entry.name, to: pair.destination, entry.name)) != nil {
                tally.linked += 1
                continue
            }
            let st: FileStat
            do { st = try pair.source.statAt(entry.name) } catch where error.code == ENOENT { continue }
            if st.isDirectory { subdirectories.append((pair, entry.name)); continue }
            if st.isSymlink {
                if options.skipSymlinks { tally.skipped.append(relative); continue }
                let target = try pair.source.readLinkAt(entry.name)
                try pair.destination.symlinkAt(entry.name, target: target)
                if let owner = options.owner { try pair.destination.changeOwnerAt(entry.name, uid: owner.uid, gid: owner.gid) }
                tally.symlinks += 1
                continue
            }
            guard st.isRegular else { tally.skipped.append(relative); continue }
            try cloneFile(entry.name, st, relative: relative, in: pair, &tally)
            options.progress?.advance(bytes: st.size)
        }
        if !subdirectories.isEmpty { push(subdirectories) }
    }

    func cloneFile(_ name: String, _ st: FileStat, relative: String, in pair: DirectoryPair, _ tally: inout CloneReport) throws(Errno) {
        if options.method == .hardlink && options.action(relative) == .share {
            do {
                try pair.source.linkAt(name, to: pair.destination, name)
                tally.linked += 1
                return
            } catch where error.code == EPERM || error.code == EMLINK {
                tally.linkFallbacks += 1 // protected_hardlinks, or the inode's link count is full
            }
        }
        let src = try pair.source.openAt(name, [.readOnly, .noFollow, .closeOnExec])
        defer { src.close() }
        let dst = try pair.destination.openAt(name, [.writeOnly, .create, .exclusive, .noFollow, .closeOnExec], mode: 0o600)
        defer { dst.close() }
        if options.method == .reflink {
            try dst.cloneContents(from: src)
            tally.reflinked += 1
        } else {
            try dst.copyContents(from: src)
            tally.copied += 1
            tally.bytesCopied += st.size
        }
        try finishCreated(dst, like: st, directory: false)
    }

    /// Owner, mode and mtime of a created entry, from its source.
    func finishCreated(_ fd: FileDescriptor, like st: FileStat, directory: Bool) throws(Errno) {
        if let owner = options.owner { try fd.changeOwner(uid: owner.uid, gid: owner.gid) }
        var mode = st.permissions & 0o777
        if directory {
            mode |= 0o700
        } else if options.readOnly {
            mode &= ~0o222
        } else {
            mode |= 0o200
        }
        try fd.changeMode(mode_t(mode))
        if !directory { try fd.setModifiedTime(st.modifiedTime) }
    }
}
