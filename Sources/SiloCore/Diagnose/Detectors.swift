// The failure classes `silo diagnose` knows, one detector each: the shapes it looks for (taken
// from real cargo and rustc output, fixtures/logs), the story it tells, and the fix.

extension Diagnoser {
    static let permissionDenied = #"Permission denied \(os error 13\)"#
    static let noSuchFile = #"No such file or directory \(os error 2\)"#
    static let fileExists = #"File exists \(os error 17\)"#
    static let registrySource = #"/registry/src/[^/\s`'"]+/[^/\s`'"]+"#

    /// The fix's target: `--key K` for a silo cache, `--cargo-home H` for a bare one.
    static func target(_ c: PathContext?, log: Log) -> (flag: String, key: String?) {
        if let key = c?.key ?? log.key { return ("--key \(key)", key) }
        // A silo line elsewhere in the log ("silo: created cache key 'pr-1'") names the key too.
        for l in log.lines {
            if let m = firstMatch(#"^silo: .*key '([A-Za-z0-9][A-Za-z0-9._-]{0,63})'"#, l) { return ("--key \(m.1[1])", m.1[1]) }
            if let p = PathContext.find(in: l), let key = p.key { return ("--key \(key)", key) }
        }
        if let home = c?.home { return ("--cargo-home \(home)", nil) }
        return ("--key <key>", nil)
    }

    /// The crate (name-version) a registry source path belongs to.
    static func crateName(in text: String) -> String? {
        firstMatch(#"/registry/src/[^/\s`'"]+/([^/\s`'"]+)"#, text)?.1[1]
    }

    static func foreignOwnership(_ log: Log, _ runner: UInt32?) -> Diagnosis? {
        for i in log.find(permissionDenied) {
            let story = log.story(endingAt: i)
            guard let c = story.lazy.compactMap({ PathContext.find(in: log.lines[$0]) }).first else { continue }
            let t = target(c, log: log)
            let uid = runner.map(String.init) ?? "$(id -u)", gid = runner.map(String.init) ?? "$(id -g)"
            let fix = t.flag.hasPrefix("--key") ? "sudo silo fix-owner \(t.flag) --uid \(uid) --gid \(gid)" : "sudo silo verify --heal \(t.flag) --uid \(uid)"
            return Diagnosis(class: .foreignOwnership, title: FailureClass.foreignOwnership.title, lines: log.matched(story),
                             causes: ["cargo could not open \(c.path): Permission denied (os error 13)",
                                      "that file belongs to another uid than the one this job runs as",
                                      "an earlier job ran in this cache as another user and left its files: typically a container running as root",
                                      "root cause: the cache was mounted into a container without --user, and what root creates on a bind mount stays root's on the host"],
                             fix: fix,
                             prevent: "start containers with the --user that 'silo mount\(t.key.map { " --key \($0)" } ?? "")' prints, or run the job with 'silo exec --user'",
                             key: t.key)
        }
        return nil
    }

    static func unlockedWriters(_ log: Log, _ runner: UInt32?) -> Diagnosis? {
        for i in log.find(fileExists) {
            let story = log.story(endingAt: i)
            guard story.contains(where: { log.lines[$0].contains(".cargo-ok") || log.lines[$0].contains("failed to unpack package") }) else { continue }
            let c = story.lazy.compactMap({ PathContext.find(in: log.lines[$0]) }).first
            let t = target(c, log: log)
            let crate = c.flatMap { crateName(in: $0.path) } ?? "a crate"
            return Diagnosis(class: .unlockedWriters, title: FailureClass.unlockedWriters.title, lines: log.matched(story),
                             causes: ["cargo could not create the .cargo-ok marker of \(crate): the file already exists",
                                      "another cargo unpacked the same crate into the same registry at the same moment",
                                      "the two did not exclude each other: each took cargo's package lock in its own CARGO_HOME",
                                      "root cause: registry/ is shared between jobs (mounted into several containers) while the lock files .package-cache and .package-cache-mutate sit beside it in each CARGO_HOME"],
                             fix: "silo verify --heal \(t.flag)",
                             prevent: "mount the whole CARGO_HOME, never registry/ alone: 'docker run $(silo mount --key K) ...' gives every job its own home, locks included",
                             key: t.key)
        }
        return nil
    }

    static func targetRace(_ log: Log, _ runner: UInt32?) -> Diagnosis? {
        // Artifacts that another build replaced or removed under this one, in a target dir.
        let shapes = [#"error: cannot open \S+/(debug|release)/(build|deps)/\S+: No such file or directory"#,
                      #"undefined hidden symbol"#,
                      #"failed to link or copy `[^`]*/target/"#, #"found invalid metadata files for crate"#, #"error\[E0786\]"#,
                      #"error\[E0463\]: can't find crate for"#, #"failed to remove file `[^`]*/target/"#, #"could not write output to [^\s]*/target/"#]
        for shape in shapes {
            for i in log.find(shape) {
                // The error line this note belongs to ("error: linking with `cc` failed"), within a screenful.
                let head = (max(0, i - 12)...i).reversed().first { log.lines[$0].hasPrefix("error") } ?? i
                let story = [head, i]
                let c = (max(0, i - 1)..<min(i + 6, log.lines.count)).lazy.compactMap({ PathContext.find(in: log.lines[$0]) }).first
                // A workspace crate that is simply not a dependency is not a race: E0463 needs a target path nearby.
                if (shape.contains("E0463") || shape.contains("hidden")) && c == nil { continue }
                let t = target(c, log: log)
                return Diagnosis(class: .targetRace, title: FailureClass.targetRace.title, lines: log.matched(story),
                                 causes: ["an artifact in the target dir was missing, half-written or replaced while this build used it",
                                          "another build wrote the same target dir at the same time",
                                          "cargo's lock on the target dir did not keep them apart: it does nothing where flock does not work (NFS, some network or FUSE mounts), or the two builds used different copies of one directory",
                                          "root cause: one CARGO_TARGET_DIR shared between concurrent jobs"],
                                 fix: "silo exec \(t.flag) -- cargo clean",
                                 prevent: "give every concurrent job its own target dir: 'silo exec --key K' (or --share private for jobs of one key) puts it inside the key's cache, on local disk",
                                 key: t.key)
            }
        }
        return nil
    }

    static func deleterDuringBuild(_ log: Log, _ runner: UInt32?) -> Diagnosis? {
        // rustc was already compiling the crate (cargo had read its manifest), then a file was gone.
        for i in log.find(#"couldn't read `[^`]*"# + registrySource + #"[^`]*`: No such file or directory"#) {
            let c = PathContext.find(in: log.lines[i])
            let t = target(c, log: log)
            let crate = c.flatMap { crateName(in: $0.path) } ?? "a crate"
            let compiling = log.find(#"^\s*Compiling "#).filter { $0 < i }
            let name = crate.split(separator: "-").dropLast().joined(separator: "-")
            let started = compiling.filter { log.lines[$0].contains("Compiling \(name) ") }
            return Diagnosis(class: .deleterDuringBuild, title: FailureClass.deleterDuringBuild.title, lines: log.matched(started + [i]),
                             causes: ["rustc could not read \(c?.path ?? "a source file"): it is gone",
                                      "cargo had read \(crate)'s manifest and started compiling it, so the crate was there when the build began",
                                      "something deleted the crate's files while the build ran: a TTL reaper (find -mtime -delete), a cache action, another job's cleanup",
                                      "root cause: a deleter that does not know which caches are in use (if nothing ran during the build, the files were missing before it, which the same heal repairs)"],
                             fix: "silo verify --heal \(t.flag)",
                             prevent: "delete caches only with 'silo reap', which never touches a leased cache; run jobs under 'silo exec' or a recorded lease ('silo lease acquire', 'silo hook') so that reap sees them",
                             key: t.key)
        }
        return nil
    }

    static func markerFilesMissing(_ log: Log, _ runner: UInt32?) -> Diagnosis? {
        // Cargo read the marker as complete, then found the manifest missing.
        for i in log.find(#"failed to read `[^`]*"# + registrySource + #"/Cargo\.toml`"#) {
            let story = log.story(endingAt: min(i + 3, log.lines.count - 1)).filter { $0 >= i - 1 } + [i]
            guard (i..<min(i + 4, log.lines.count)).contains(where: { log.lines[$0].contains("No such file or directory") }) else { continue }
            let c = PathContext.find(in: log.lines[i])
            return marker(log, lines: story + log.find(noSuchFile).filter { $0 > i && $0 < i + 4 }, context: c,
                          symptom: "cargo could not read \(c?.path ?? "a crate's Cargo.toml"): the file is gone")
        }
        // A crate without its lib.rs looks to cargo like a crate with no library.
        for i in log.find(#"ignoring invalid dependency `[^`]+` which is missing a lib target"#) {
            let dep = firstMatch(#"dependency `([^`]+)`"#, log.lines[i])?.1[1] ?? "a dependency"
            let followers = log.find("`\(dep)`").filter { $0 > i && log.lines[$0].contains("error[E04") }
            return marker(log, lines: [i] + followers, context: nil,
                          symptom: "cargo ignored the dependency \(dep): its src/lib.rs is missing, so it seems to have no library, and the code using it fails")
        }
        // A module file of a registry crate is missing.
        for i in log.find(#"error\[E0583\]: file not found for module"#) {
            guard let loc = (i..<min(i + 3, log.lines.count)).first(where: { log.lines[$0].range(of: registrySource, options: .regularExpression) != nil }) else { continue }
            let c = PathContext.find(in: log.lines[loc])
            return marker(log, lines: [i, loc], context: c, symptom: "rustc found no file for a module of \(c.flatMap { crateName(in: $0.path) } ?? "a registry crate")")
        }
        // The rustix trap: a registry crate fails on its own imports after its build script chose a
        // configuration from files that were not all there; the wrong result stays cached in target/.
        for i in log.find(#"error\[E043[23]\]"#) {
            guard let loc = (i..<min(i + 3, log.lines.count)).first(where: { log.lines[$0].contains("-->") && log.lines[$0].range(of: registrySource, options: .regularExpression) != nil }) else { continue }
            let c = PathContext.find(in: log.lines[loc])
            let crate = c.flatMap { crateName(in: $0.path) } ?? "a registry crate"
            let t = target(c, log: log)
            return Diagnosis(class: .markerFilesMissing, title: FailureClass.markerFilesMissing.title, lines: log.matched([i, loc]),
                             causes: ["\(crate), a published crate, does not compile: \(log.lines[i].trimmingCharacters(in: .whitespaces))",
                                      "published crates compile, so its inputs are wrong: its build script chose a configuration (a backend, a cfg) from files of the crate that are not all there",
                                      "the crate's directory lost files while its .cargo-ok marker stayed, and cargo trusts the marker forever",
                                      "the build script's wrong choice is cached in the target dir, so it stays wrong even after the files come back",
                                      "root cause: a partial deletion inside the registry (a TTL sweep, an interrupted rm)"],
                             fix: "silo verify --heal \(t.flag)",
                             prevent: markerPrevention,
                             key: t.key)
        }
        return nil
    }

    static let markerPrevention = "collect with 'silo reap' (whole caches, or --max-src-age, which removes whole crate directories marker first), never with find -mtime inside a registry: extracted files keep their archive's 2006 mtime"

    static func marker(_ log: Log, lines: [Int], context c: PathContext?, symptom: String) -> Diagnosis {
        let t = target(c, log: log)
        return Diagnosis(class: .markerFilesMissing, title: FailureClass.markerFilesMissing.title, lines: log.matched(lines),
                         causes: [symptom,
                                  "the crate's .cargo-ok marker says it was extracted completely, so cargo does not extract it again",
                                  "files were deleted from inside the crate's directory while the marker stayed",
                                  "root cause: a deleter that works on files, not crates: a TTL sweep (find -mtime +N -delete deletes every extracted file, whose mtime is the archive's 2006 one, and keeps the fresh marker) or an interrupted rm"],
                         fix: "silo verify --heal \(t.flag)",
                         prevent: markerPrevention,
                         key: t.key)
    }

    static func lockWait(_ log: Log, _ runner: UInt32?) -> Diagnosis? {
        guard let last = log.find(#"Blocking waiting for file lock on "#).last else { return nil }
        // Progress after the wait means the lock came: no alarm.
        let progress = log.find(#"^\s*(Compiling|Finished|Downloaded|Checking|Fresh|Running|Documenting|Updating|Locking|Adding)\b"#).filter { $0 > last }
        guard progress.isEmpty else { return nil }
        let what = firstMatch(#"file lock on (.+)$"#, log.lines[last])?.1[1] ?? "a cargo lock"
        let end = log.find(#"operation was canceled|Terminated|Killed|timed out|exceeded the maximum execution time|exit code 143|exit code 137"#).filter { $0 > last }
        let t = target(nil, log: log)
        return Diagnosis(class: .lockWait, title: FailureClass.lockWait.title, lines: log.matched([last] + end),
                         causes: ["cargo waited for the lock on the \(what) and never got it before the job was stopped",
                                  "another process held that lock the whole time: a cargo in the same \(what.contains("package") ? "CARGO_HOME" : "target dir"), or a process a job left behind",
                                  "root cause: two jobs use one cache without knowing of each other, or a job left a process running that keeps the lock"],
                         fix: "silo ls" + (t.key.map { "   # who holds key \($0): the holder's pid and command" } ?? ""),
                         prevent: "run jobs with 'silo exec --key K --wait 10m', which names the holder and gives up with exit 75, or --share private for concurrent jobs of one key",
                         key: t.key)
    }
}
