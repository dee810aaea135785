// Recorded leases, runner hooks, env and mount: the ways a job that silo does not run gets a cache,
// and how reap and other jobs see it.

import Foundation
import Testing
@testable import SiloCore
import SiloSystem

private func reapReport(_ root: String, _ args: [String] = ["--max-age", "0"]) throws -> [String: Any] {
    let r = try silo(["reap", "--json"] + args, root: root)
    guard r.status == 0 else { throw TestFailure("reap failed: \(r.stderr)") }
    return try jsonObject(r.stdout)
}

private func action(_ report: [String: Any], _ key: String) -> String? {
    (report["caches"] as? [[String: Any]] ?? []).first { $0["key"] as? String == key }?["action"] as? String
}

/// The environment a GitHub runner gives its hooks, for a pull_request job (payload file included).
private func runnerEnvironment(_ dir: TempDir, runner: String = "fleet-07", job: String = "build", pr: Int = 31) throws -> [String: String] {
    let payload = dir.file("event-\(runner).json")
    try #"{"action":"synchronize","number":\#(pr),"pull_request":{"number":\#(pr),"head":{"ref":"feature/x"}}}"#.write(toFile: payload, atomically: true, encoding: .utf8)
    var env = baseEnvironment()
    env["GITHUB_ACTIONS"] = "true"
    env["GITHUB_EVENT_NAME"] = "pull_request"
    env["GITHUB_EVENT_PATH"] = payload
    env["GITHUB_REF"] = "refs/pull/\(pr)/merge"
    env["GITHUB_REF_NAME"] = "\(pr)/merge"
    env["GITHUB_RUN_ID"] = "9127351180"
    env["GITHUB_RUN_ATTEMPT"] = "2"
    env["GITHUB_JOB"] = job
    env["RUNNER_NAME"] = runner
    env["GITHUB_ENV"] = dir.file("github-env-\(runner)")
    return env
}

private func envFile(_ path: String) -> [String: String] {
    var out: [String: String] = [:]
    for line in readFile(path).split(separator: "\n") {
        let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
        if parts.count == 2 { out[parts[0]] = parts[1] }
    }
    return out
}

@Suite("recorded leases, hooks, env, mount", .serialized)
struct LeaseTests {
    @Test("a recorded lease keeps reap and locked jobs off until it is released")
    func blocksUntilReleased() throws {
        let root = TempDir()
        let acquired = try silo(["lease", "acquire", "--key", "pr-1", "--holder", "docker-step-1", "--ttl", "1h", "--json"], root: root.path)
        #expect(acquired.status == 0, "\(acquired.stderr)")
        let lease = try jsonObject(acquired.stdout)
        #expect(lease["holder"] as? String == "docker-step-1" && lease["slot"] as? Int == 1)
        #expect(exists(lease["home"] as? String ?? "") && exists(lease["target"] as? String ?? ""), "the directories exist for the job")

        let r1 = try reapReport(root.path)
        #expect(action(r1, "pr-1") == "kept")
        let reason = (r1["caches"] as? [[String: Any]])?.first?["reason"] as? String ?? ""
        #expect(reason.contains("recorded lease 'docker-step-1'"), "\(reason)")
        let busy = try silo(["exec", "--key", "pr-1", "--wait", "0.3", "--", "true"], root: root.path)
        #expect(busy.status == 75 && busy.stderr.contains("recorded lease 'docker-step-1'"), "\(busy.stderr)")
        let beside = try silo(["exec", "--key", "pr-1", "--share", "private", "--", "sh", "-c", "echo $SILO_SLOT"], root: root.path)
        #expect(beside.stdout == "2\n", "a private job takes another slot: \(beside.stderr)")
        let other = try silo(["lease", "acquire", "--key", "pr-1", "--holder", "docker-step-2", "--ttl", "1h", "--wait", "0.2"], root: root.path)
        #expect(other.status == 75, "a second locked recorded lease waits: \(other.stderr)")
        let renewed = try silo(["lease", "acquire", "--key", "pr-1", "--holder", "docker-step-1", "--ttl", "2h", "--json"], root: root.path)
        let renewedExpiry = try jsonObject(renewed.stdout)["expires"] as? Double ?? 0
        #expect(renewed.status == 0 && renewedExpiry > (lease["expires"] as? Double ?? 0), "the holder renews its own")
        let elsewhere = try silo(["lease", "acquire", "--key", "pr-2", "--holder", "docker-step-1", "--ttl", "1h"], root: root.path)
        #expect(elsewhere.status == 2 && elsewhere.stderr.contains("already holds key 'pr-1'"), "\(elsewhere.stderr)")

        #expect(try silo(["lease", "release", "--holder", "docker-step-1", "--exit-status", "0"], root: root.path).status == 0)
        let r2 = try reapReport(root.path)
        #expect(action(r2, "pr-1") == "deleted", "released: reap may take it")
        let again = try silo(["lease", "release", "--holder", "docker-step-1"], root: root.path)
        #expect(again.status == 1 && again.stderr.contains("no recorded lease for holder 'docker-step-1'"), "\(again.stderr)")
    }

    @Test("an expired recorded lease no longer holds the cache: reap reports it, drops it, and may collect the cache")
    func expires() throws {
        let root = TempDir()
        #expect(try silo(["lease", "acquire", "--key", "pr-3", "--holder", "forgotten", "--ttl", "1s"], root: root.path).status == 0)
        let dry = try reapReport(root.path, ["--max-age", "30d", "--dry-run"])
        #expect(dry["expired_leases"] as? [Any] == nil || (dry["expired_leases"] as? [Any])?.isEmpty == true, "not yet expired")
        Clock.sleep(seconds: 1.2)
        let r = try reapReport(root.path)
        let expired = r["expired_leases"] as? [[String: Any]] ?? []
        #expect(expired.map { $0["holder"] as? String } == ["forgotten"] && expired.first?["action"] as? String == "dropped", "\(expired)")
        #expect(action(r, "pr-3") == "deleted")
        #expect(LeaseManager(root: SiloRoot(path: root.path)).allRecords().isEmpty)
    }

    @Test("bad lease input is refused in one line naming the value")
    func badInput() throws {
        let root = TempDir()
        for (args, message) in [(["acquire", "--key", "k"], "needs --holder ID"),
                                (["acquire", "--key", "k", "--holder", "h"], "needs --ttl DURATION"),
                                (["acquire", "--key", "k", "--holder", "h", "--ttl", "0"], "--ttl must be longer than 0"),
                                (["acquire", "--key", "k", "--holder", "bad/id", "--ttl", "1h"], "--holder 'bad/id' contains '/'"),
                                (["acquire", "--key", "k", "--holder", "h", "--ttl", "soon"], "--ttl 'soon' is not a duration"),
                                (["renew"], "'silo lease renew': unknown action; expected acquire, release or ls"),
                                (["release"], "needs --holder ID")] {
            let r = try silo(["lease"] + args, root: root.path)
            #expect(r.status == 2 && r.stderr.contains(message) && r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
        }
        #expect(!exists(root.file("caches/k")))
    }

    @Test("runner hooks: job-started leases the PR's cache and hands it over through GITHUB_ENV; matrix jobs get slots of their own; job-completed releases")
    func hooks() throws {
        let root = TempDir(), dir = TempDir()
        let a = try runnerEnvironment(dir, runner: "fleet-07"), b = try runnerEnvironment(dir, runner: "fleet-08")
        let started = try silo(["hook", "job-started"], root: root.path, environment: a)
        #expect(started.status == 0, "\(started.stderr)")
        let vars = envFile(a["GITHUB_ENV"]!)
        #expect(vars["SILO_KEY"] == "pr-31" && vars["SILO_SLOT"] == "1" && vars["SILO_HOLDER"] == "gh-fleet-07-9127351180-2-build", "\(vars)")
        #expect(vars["CARGO_HOME"] == root.file("caches/pr-31/1/home") && vars["CARGO_TARGET_DIR"] == root.file("caches/pr-31/1/target"))
        // The same job of a matrix, on another runner of the host, at the same time.
        #expect(try silo(["hook", "job-started"], root: root.path, environment: b).status == 0)
        #expect(envFile(b["GITHUB_ENV"]!)["SILO_SLOT"] == "2")
        // The steps of the job use what the hook handed over.
        var step = a
        for (k, v) in vars { step[k] = v }
        let build = try run("/bin/sh", ["-c", "touch $CARGO_HOME/used-by-step && test -d $CARGO_TARGET_DIR"], environment: step)
        #expect(build.status == 0)
        #expect(action(try reapReport(root.path), "pr-31") == "kept")

        #expect(try silo(["hook", "job-completed"], root: root.path, environment: a).status == 0)
        #expect(try silo(["hook", "job-completed"], root: root.path, environment: b).status == 0)
        let twice = try silo(["hook", "job-completed"], root: root.path, environment: a)
        #expect(twice.status == 0 && twice.stderr.contains("holds no recorded lease"), "a hook never fails the job for nothing to release: \(twice.stderr)")
        #expect(action(try reapReport(root.path), "pr-31") == "deleted")

        var noEnv = a
        noEnv["GITHUB_ENV"] = nil
        let refused = try silo(["hook", "job-started"], root: root.path, environment: noEnv)
        #expect(refused.status == 1 && refused.stderr.contains("GITHUB_ENV is not set"), "\(refused.stderr)")
        var noJob = a
        noJob["GITHUB_JOB"] = nil
        #expect(try silo(["hook", "job-started"], root: root.path, environment: noJob).stderr.contains("GITHUB_RUN_ID and GITHUB_JOB must be set"))
        var push = a
        push["GITHUB_EVENT_NAME"] = "push"; push["GITHUB_REF"] = "refs/heads/main"; push["GITHUB_REF_NAME"] = "main"
        #expect(try silo(["hook", "job-started", "--share", "locked"], root: root.path, environment: push).status == 0)
        #expect(envFile(push["GITHUB_ENV"]!)["SILO_KEY"] == "main")
    }

    @Test("env prints export lines a shell can eval; --github appends NAME=value lines")
    func env() throws {
        let root = TempDir(), dir = TempDir()
        let r = try silo(["env", "--key", "pr-4"], root: root.path)
        #expect(r.status == 0)
        let evaluated = try run("/bin/sh", ["-c", "eval \"$(\(Repo.silo) --root \(root.path) env --key pr-4)\" && echo $CARGO_HOME $SILO_KEY"])
        #expect(evaluated.stdout == root.file("caches/pr-4/1/home") + " pr-4\n", "\(evaluated.stdout)\(evaluated.stderr)")
        var env = baseEnvironment()
        env["GITHUB_ENV"] = dir.file("ghenv")
        try "EXISTING=1\n".write(toFile: dir.file("ghenv"), atomically: true, encoding: .utf8)
        #expect(try silo(["env", "--key", "pr-4", "--github"], root: root.path, environment: env).status == 0)
        let vars = envFile(dir.file("ghenv"))
        #expect(vars["EXISTING"] == "1" && vars["CARGO_TARGET_DIR"] == root.file("caches/pr-4/1/target"))
    }

    @Test("mount prints the docker arguments for the whole CARGO_HOME, with the sources made and owned beforehand",
          .enabled(if: runningAsRoot, "needs root to give the sources to another uid"))
    func mount() throws {
        let root = TempDir()
        let r = try silo(["mount", "--key", "pr-5", "--user", "1000:1000"], root: root.path)
        #expect(r.status == 0, "\(r.stderr)")
        let home = root.file("caches/pr-5/1/home"), target = root.file("caches/pr-5/1/target")
        #expect(r.stdout == "-v \(home):/cargo-home -e CARGO_HOME=/cargo-home -v \(target):/cargo-target -e CARGO_TARGET_DIR=/cargo-target --user 1000:1000\n")
        for p in [home, target, home + "/registry", home + "/.package-cache"] {
            #expect(try FileSystem.status(p)?.uid == 1000, "\(p) is the runner's")
        }
        let j = try jsonObject(try silo(["mount", "--key", "pr-5", "--format", "json", "--home-at", "/h", "--target-at", "/t", "--user", "1000"], root: root.path).stdout)
        #expect(j["home_at"] as? String == "/h" && (j["docker_args"] as? [String])?.contains("CARGO_TARGET_DIR=/t") == true)
        for (args, message) in [(["--home-at", "cargo"], "--home-at 'cargo' is not a container path"),
                                (["--home-at", "/x", "--target-at", "/x/target"], "overlap"),
                                (["--format", "yaml"], "--format 'yaml' is not a format")] {
            let bad = try silo(["mount", "--key", "pr-6"] + args, root: root.path)
            #expect(bad.status == 2 && bad.stderr.contains(message), "\(args): \(bad.stderr)")
        }
        let spaced = TempDir("silo root")
        let s = try silo(["mount", "--key", "pr-6"], root: spaced.file("r"))
        #expect(s.status == 2 && s.stderr.contains("has a space or quote"), "\(s.stderr)")
        #expect(!exists(root.file("caches/pr-6")))
    }
}
