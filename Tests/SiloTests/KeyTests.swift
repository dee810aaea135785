// Cache keys: what a key may be, and how `silo key` derives one from a GitHub Actions job.
//
// The environments below are written the way the runner sets them: every GITHUB_* variable present,
// GITHUB_HEAD_REF and GITHUB_BASE_REF set to "" outside pull request events, GITHUB_EVENT_PATH
// pointing at the webhook payload (a real-shaped one in a temporary directory where it matters).

import Foundation
import Testing
@testable import SiloCLI
@testable import SiloCore

/// The error `body` throws, or nil when it returns.
/// (Untyped, because closures written inside a macro do not get typed throws inferred.)
private func keyError<T>(_ body: () throws -> T) -> SiloError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error as? SiloError
    }
}

/// One line, short, nothing a terminal or a log collector would break or interpret.
private func isOneShortLine(_ message: String, limit: Int = 200) -> Bool {
    !message.isEmpty && message.count < limit && !message.contains(where: { $0.isNewline })
        && !message.unicodeScalars.contains(where: { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
}

/// A value whose test-case label stays readable when it is 10,000 characters long.
struct LongText: Sendable, CustomTestStringConvertible {
    let value: String
    init(_ value: String) { self.value = value }
    var testDescription: String {
        value.count > 24 ? "\(value.prefix(12).debugDescription)...(\(value.count) chars)" : value.debugDescription
    }
}

private let sha = "3f786850e387550fdab836ed7e6dc881de23001b"
private let sha2 = "89e6c98d92887913cadf06b2adb97f26cde4849b"

/// The variables the runner sets for every job, whatever the event.
private func actionsEnvironment(event: String, ref: String, refName: String, refType: String = "branch",
                                headRef: String = "", baseRef: String = "", eventPath: String = "/home/runner/work/_temp/_github_workflow/event.json") -> [String: String] {
    [
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKFLOW": "CI",
        "GITHUB_RUN_ID": "9876543210",
        "GITHUB_RUN_NUMBER": "412",
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_JOB": "test",
        "GITHUB_ACTION": "__run",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_REPOSITORY": "example/silo",
        "GITHUB_REPOSITORY_OWNER": "example",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_API_URL": "https://api.github.com",
        "GITHUB_WORKSPACE": "/home/runner/work/silo/silo",
        "GITHUB_SHA": sha,
        "GITHUB_EVENT_NAME": event,
        "GITHUB_REF": ref,
        "GITHUB_REF_NAME": refName,
        "GITHUB_REF_TYPE": refType,
        "GITHUB_REF_PROTECTED": "false",
        "GITHUB_HEAD_REF": headRef,
        "GITHUB_BASE_REF": baseRef,
        "GITHUB_EVENT_PATH": eventPath,
        "RUNNER_OS": "Linux",
        "RUNNER_TEMP": "/home/runner/work/_temp",
        "HOME": "/home/runner",
    ]
}

/// A webhook payload shaped like the one GitHub writes for pull_request and pull_request_target
/// (trimmed, but with the nested objects that also carry numbers and refs).
private func pullRequestPayload(number: Int, action: String = "synchronize", head: String = "feature/foo", base: String = "main") -> String {
    """
    {
      "action": "\(action)",
      "number": \(number),
      "pull_request": {
        "url": "https://api.github.com/repos/example/silo/pulls/\(number)",
        "id": 1811094587,
        "node_id": "PR_kwDOJv1kYc5r8xY7",
        "number": \(number),
        "state": "open",
        "locked": false,
        "title": "Make the cache faster",
        "user": {"login": "octocat", "id": 583231, "type": "User"},
        "draft": false,
        "commits": 3,
        "additions": 120,
        "deletions": 7,
        "changed_files": 4,
        "head": {
          "label": "octocat:\(head)",
          "ref": "\(head)",
          "sha": "\(sha2)",
          "repo": {"id": 654321987, "name": "silo", "full_name": "octocat/silo", "fork": true}
        },
        "base": {
          "label": "example:\(base)",
          "ref": "\(base)",
          "sha": "\(sha)",
          "repo": {"id": 123456789, "name": "silo", "full_name": "example/silo", "fork": false}
        }
      },
      "repository": {"id": 123456789, "name": "silo", "full_name": "example/silo", "default_branch": "main"},
      "sender": {"login": "octocat", "id": 583231, "type": "User"}
    }
    """
}

/// A directory holding `event.json` with `payload`, like the runner's `_temp/_github_workflow`.
private func eventFile(_ payload: String) throws -> (TempDir, String) {
    let dir = TempDir("silo-event")
    let path = dir.file("event.json")
    try payload.write(toFile: path, atomically: true, encoding: .utf8)
    return (dir, path)
}

/// `<prefix>-<8 lower-case hex digits>`, at most 64 characters.
private func isHashed(_ key: CacheKey, prefix: String) -> Bool {
    let raw = key.rawValue
    guard raw.count <= CacheKey.maxLength, raw.hasPrefix(prefix + "-") else { return false }
    let suffix = raw.dropFirst(prefix.count + 1)
    return suffix.count == KeyDerivation.hashDigits && suffix.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
}

@Suite("cache keys")
struct KeyTests {
    // MARK: - Validation

    @Test("valid keys are kept as they are", arguments: [
        "pr-1031", "main", "release-1.2", "a", String(repeating: "k", count: 64), "A_b.c-d", "_leading-underscore", "0", "v1.2.3",
    ])
    func accepted(_ raw: String) throws {
        let key = try CacheKey(validating: raw)
        #expect(key.rawValue == raw)
        #expect(key.description == raw)
    }

    @Test("invalid keys are refused with a usage error naming the character or the length", arguments: [
        ("", "empty"),
        (String(repeating: "k", count: 65), "65 characters"),
        (String(repeating: "k", count: 10_000), "10000 characters"),
        (String(repeating: "\n", count: 10_000), "10000 characters"),
        ("a/b", "'/'"),
        ("../x", "'/'"),
        ("..", "'.'"),
        (".hidden", "'.'"),
        ("-flag", "'-'"),
        ("a b", "U+0020"),
        ("naïve", "U+00EF"),
        ("nai\u{0308}ve", "U+0308"),
        ("a\nb", "U+000A"),
        ("a\rb", "U+000D"),
        ("a\u{0}b", "U+0000"),
        ("a\u{1B}[31mred", "U+001B"),
        ("a\u{2028}b", "U+2028"),
        ("a\u{85}b", "U+0085"),
        ("a\u{9B}31mb", "U+009B"),
        ("key\u{7F}", "U+007F"),
        ("pr:1", "':'"),
        ("pr*", "'*'"),
        ("🦀", "U+1F980"),
        ("a\u{202E}b", "U+202E"),
    ].map { (LongText($0), $1) })
    func refused(_ raw: LongText, expected: String) throws {
        let error = try #require(keyError { try CacheKey(validating: raw.value) })
        #expect(error.exitCode == ExitCode.usage)
        #expect(error.message.contains(expected), "\(error.message)")
        #expect(isOneShortLine(error.message), "\(error.message.debugDescription)")
    }

    @Test("the message for a bad character quotes the printable ones")
    func printableCharacterQuoted() throws {
        let error = try #require(keyError { try CacheKey(validating: "naïve") })
        #expect(error.message.contains("'ï' (U+00EF)"))
        let slash = try #require(keyError { try CacheKey(validating: "feature/x") })
        #expect(slash.message.contains("'/' (U+002F)"))
    }

    // MARK: - Derivation from real GitHub Actions environments

    @Test("pull_request: the number comes from refs/pull/N/merge")
    func pullRequest() throws {
        let (dir, path) = try eventFile(pullRequestPayload(number: 1031))
        defer { withExtendedLifetime(dir) {} }
        let env = actionsEnvironment(event: "pull_request", ref: "refs/pull/1031/merge", refName: "1031/merge",
                                     headRef: "feature/Foo_bar", baseRef: "main", eventPath: path)
        #expect(try KeyCommand.derive(environment: env, shard: nil).rawValue == "pr-1031")
        // Without the payload too: the ref alone identifies the PR.
        var noPayload = env
        noPayload["GITHUB_EVENT_PATH"] = dir.file("missing.json")
        #expect(try KeyCommand.derive(environment: noPayload, shard: nil).rawValue == "pr-1031")
        #expect(try KeyDerivation.derive(environment: env).rawValue == "pr-1031")
    }

    @Test("pull_request: refs/pull/N/head (a workflow that checks out the head) also gives pr-N")
    func pullRequestHeadRef() throws {
        let env = actionsEnvironment(event: "pull_request", ref: "refs/pull/7/head", refName: "7/head", headRef: "x", baseRef: "main")
        #expect(try KeyDerivation.derive(environment: env).rawValue == "pr-7")
    }

    @Test("pull_request_target: GITHUB_REF is the base branch, the number comes from the payload")
    func pullRequestTarget() throws {
        let (dir, path) = try eventFile(pullRequestPayload(number: 1031, action: "opened"))
        defer { withExtendedLifetime(dir) {} }
        let env = actionsEnvironment(event: "pull_request_target", ref: "refs/heads/main", refName: "main",
                                     headRef: "feature/foo", baseRef: "main", eventPath: path)
        #expect(try KeyCommand.derive(environment: env, shard: nil).rawValue == "pr-1031")
        #expect(try KeyCommand.derive(environment: env, shard: "2").rawValue == "pr-1031-s2")
    }

    @Test("pull_request_target: a payload with the number only inside pull_request")
    func pullRequestTargetNestedNumber() throws {
        let payload = #"{"action": "labeled", "pull_request": {"number": 88, "head": {"ref": "x"}}, "repository": {"id": 1}}"#
        let (dir, path) = try eventFile(payload)
        defer { withExtendedLifetime(dir) {} }
        let env = actionsEnvironment(event: "pull_request_target", ref: "refs/heads/main", refName: "main",
                                     headRef: "x", baseRef: "main", eventPath: path)
        #expect(try KeyCommand.derive(environment: env, shard: nil).rawValue == "pr-88")
    }

    @Test("pull_request_target never falls back to the base branch", arguments: [
        "missing",      // GITHUB_EVENT_PATH names no file
        "unset",        // GITHUB_EVENT_PATH not set at all
        "not json",
        #"{"action": "opened", "repository": {"id": 1}}"#,
        #"{"number": "1031", "pull_request": {"number": null}}"#,
        #"{"number": 0, "pull_request": {"number": -4}}"#,
        #"[1031]"#,
        "",
    ])
    func pullRequestWithoutNumber(_ payload: String) throws {
        let dir = TempDir("silo-event")
        var env = actionsEnvironment(event: "pull_request_target", ref: "refs/heads/main", refName: "main",
                                     headRef: "feature/foo", baseRef: "main", eventPath: dir.file("event.json"))
        switch payload {
        case "missing": break
        case "unset": env["GITHUB_EVENT_PATH"] = nil
        default: try payload.write(toFile: dir.file("event.json"), atomically: true, encoding: .utf8)
        }
        let error = try #require(keyError { try KeyCommand.derive(environment: env, shard: nil) })
        #expect(error.exitCode == ExitCode.failure)
        #expect(error.message.contains("pull request number"))
        #expect(error.message.contains("--key"))
        #expect(isOneShortLine(error.message, limit: 300), "\(error.message)")
    }

    @Test("pull_request with no number anywhere is an error, never an empty or shared key", arguments: [
        ["GITHUB_REF": "", "GITHUB_REF_NAME": ""],
        ["GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main"],
        ["GITHUB_REF": "refs/pull//merge", "GITHUB_REF_NAME": "/merge"],
        ["GITHUB_REF": "refs/pull/0/merge", "GITHUB_REF_NAME": "0/merge"],
        ["GITHUB_REF": "refs/pull/abc/merge", "GITHUB_REF_NAME": "abc/merge"],
    ])
    func pullRequestNoNumber(_ refs: [String: String]) throws {
        let dir = TempDir("silo-event")
        try #"{"action": "opened", "repository": {"id": 1}}"#.write(toFile: dir.file("event.json"), atomically: true, encoding: .utf8)
        var env = actionsEnvironment(event: "pull_request", ref: "", refName: "", headRef: "feature/foo", baseRef: "main", eventPath: dir.file("event.json"))
        env.merge(refs) { $1 }
        let error = try #require(keyError { try KeyCommand.derive(environment: env, shard: nil) })
        #expect(error.exitCode == ExitCode.failure)
        #expect(error.message.contains("pull request number"))
        // The same through `silo key`: status 1, nothing usable printed.
        #expect(SiloCLI.main(arguments: ["key"], environment: env) == ExitCode.failure)
    }

    @Test("push to a branch gives the branch name")
    func pushMain() throws {
        let env = actionsEnvironment(event: "push", ref: "refs/heads/main", refName: "main")
        #expect(try KeyDerivation.derive(environment: env).rawValue == "main")
        #expect(try KeyCommand.derive(environment: env, shard: nil).rawValue == "main")
    }

    @Test("push to a branch whose name does not fit gives a readable prefix plus 8 hex digits")
    func pushFeatureBranch() throws {
        let env = actionsEnvironment(event: "push", ref: "refs/heads/feature/Foo_bar", refName: "feature/Foo_bar")
        let key = try KeyCommand.derive(environment: env, shard: nil)
        #expect(isHashed(key, prefix: "feature-foo_bar"), "\(key)")
        #expect(key.rawValue == "feature-foo_bar-" + KeyDerivation.hexHash("feature/Foo_bar"))
        // Only GITHUB_REF (an older runner, or a step that cleared GITHUB_REF_NAME): the same key.
        var refOnly = env
        refOnly["GITHUB_REF_NAME"] = ""
        #expect(try KeyDerivation.derive(environment: refOnly) == key)
    }

    @Test("tag push gives the tag name")
    func tagPush() throws {
        let env = actionsEnvironment(event: "push", ref: "refs/tags/v1.2.3", refName: "v1.2.3", refType: "tag")
        #expect(try KeyDerivation.derive(environment: env).rawValue == "v1.2.3")
        var refOnly = env
        refOnly["GITHUB_REF_NAME"] = nil
        #expect(try KeyDerivation.derive(environment: refOnly).rawValue == "v1.2.3")
    }

    @Test("schedule, workflow_dispatch and other events give the ref name", arguments: [
        ("schedule", "refs/heads/main", "main", "main"),
        ("workflow_dispatch", "refs/heads/main", "main", "main"),
        ("workflow_dispatch", "refs/heads/release-1.2", "release-1.2", "release-1.2"),
        ("workflow_dispatch", "refs/tags/v2.0.0", "v2.0.0", "v2.0.0"),
        ("repository_dispatch", "refs/heads/main", "main", "main"),
        ("release", "refs/tags/v1.0.0", "v1.0.0", "v1.0.0"),
    ])
    func otherEvents(event: String, ref: String, refName: String, expected: String) throws {
        let env = actionsEnvironment(event: event, ref: ref, refName: refName, refType: ref.hasPrefix("refs/tags/") ? "tag" : "branch")
        #expect(try KeyCommand.derive(environment: env, shard: nil).rawValue == expected)
    }

    @Test("workflow_dispatch on a branch with a slash is rewritten")
    func dispatchOnSlashBranch() throws {
        let env = actionsEnvironment(event: "workflow_dispatch", ref: "refs/heads/release/1.x", refName: "release/1.x")
        let key = try KeyDerivation.derive(environment: env)
        #expect(isHashed(key, prefix: "release-1.x"), "\(key)")
    }

    @Test("an event with neither GITHUB_REF_NAME nor GITHUB_REF is an error")
    func noRefAtAll() throws {
        for event in ["push", "schedule", "merge_group"] {
            var env = actionsEnvironment(event: event, ref: "", refName: "")
            #expect(keyError { try KeyDerivation.derive(environment: env) }?.exitCode == ExitCode.failure)
            env["GITHUB_REF"] = nil
            env["GITHUB_REF_NAME"] = nil
            #expect(keyError { try KeyDerivation.derive(environment: env) }?.exitCode == ExitCode.failure)
        }
    }

    @Test("merge_group: mq-<base>-pr-<N>, the same for every queue entry of one PR")
    func mergeGroup() throws {
        let env = actionsEnvironment(event: "merge_group", ref: "refs/heads/gh-readonly-queue/main/pr-12-\(sha)",
                                     refName: "gh-readonly-queue/main/pr-12-\(sha)")
        #expect(try KeyCommand.derive(environment: env, shard: nil).rawValue == "mq-main-pr-12")
        // The queue rebuilt the group: new sha, same PR, same cache.
        let again = actionsEnvironment(event: "merge_group", ref: "refs/heads/gh-readonly-queue/main/pr-12-\(sha2)",
                                       refName: "gh-readonly-queue/main/pr-12-\(sha2)")
        #expect(try KeyDerivation.derive(environment: again).rawValue == "mq-main-pr-12")
        // Another PR in the same queue: another cache.
        let other = actionsEnvironment(event: "merge_group", ref: "refs/heads/gh-readonly-queue/main/pr-120-\(sha)",
                                       refName: "gh-readonly-queue/main/pr-120-\(sha)")
        #expect(try KeyDerivation.derive(environment: other).rawValue == "mq-main-pr-120")
        // GITHUB_REF alone gives the same key.
        var refOnly = env
        refOnly["GITHUB_REF_NAME"] = nil
        #expect(try KeyDerivation.derive(environment: refOnly).rawValue == "mq-main-pr-12")
        #expect(try KeyDerivation.derive(environment: env, shard: "3").rawValue == "mq-main-pr-12-s3")
    }

    @Test("merge_group into a base branch with a slash")
    func mergeGroupSlashBase() throws {
        let env = actionsEnvironment(event: "merge_group", ref: "refs/heads/gh-readonly-queue/release/1.x/pr-12-\(sha)",
                                     refName: "gh-readonly-queue/release/1.x/pr-12-\(sha)")
        let key = try KeyCommand.derive(environment: env, shard: nil)
        #expect(isHashed(key, prefix: "mq-release-1.x-pr-12"), "\(key)")
        // Not the same cache as a queue into release-1.x, nor as one into release/1.y.
        let dashed = actionsEnvironment(event: "merge_group", ref: "refs/heads/gh-readonly-queue/release-1.x/pr-12-\(sha)",
                                        refName: "gh-readonly-queue/release-1.x/pr-12-\(sha)")
        let y = actionsEnvironment(event: "merge_group", ref: "refs/heads/gh-readonly-queue/release/1.y/pr-12-\(sha)",
                                   refName: "gh-readonly-queue/release/1.y/pr-12-\(sha)")
        let keys = try [key, KeyDerivation.derive(environment: dashed), KeyDerivation.derive(environment: y)]
        #expect(keys[1].rawValue == "mq-release-1.x-pr-12")
        #expect(Set(keys).count == 3)
        // Stable across new queue entries.
        let again = actionsEnvironment(event: "merge_group", ref: "refs/heads/gh-readonly-queue/release/1.x/pr-12-\(sha2)",
                                       refName: "gh-readonly-queue/release/1.x/pr-12-\(sha2)")
        #expect(try KeyDerivation.derive(environment: again) == key)
    }

    @Test("--shard appends -s<S>")
    func shard() throws {
        let push = actionsEnvironment(event: "push", ref: "refs/heads/main", refName: "main")
        #expect(try KeyDerivation.derive(environment: push, shard: "3").rawValue == "main-s3")
        #expect(try KeyCommand.derive(environment: push, shard: "linux_x86-64").rawValue == "main-slinux_x86-64")
        let pr = actionsEnvironment(event: "pull_request", ref: "refs/pull/1031/merge", refName: "1031/merge", headRef: "f", baseRef: "main")
        #expect(try KeyDerivation.derive(environment: pr, shard: "3").rawValue == "pr-1031-s3")
        // Shards of one ref are different caches, and differ from the unsharded one.
        let keys = try ["1", "2", "3", "10"].map { s throws(SiloError) in try KeyDerivation.derive(environment: pr, shard: s) } + [KeyDerivation.derive(environment: pr)]
        #expect(Set(keys).count == 5)
        // A shard on a ref that needed rewriting still gives a valid key.
        let slashy = actionsEnvironment(event: "push", ref: "refs/heads/feature/x", refName: "feature/x")
        let sharded = try KeyDerivation.derive(environment: slashy, shard: "3")
        #expect(isHashed(sharded, prefix: "feature-x-s3"), "\(sharded)")
        #expect(try KeyDerivation.derive(environment: slashy) != sharded)
    }

    @Test("a bad --shard is refused, naming it", arguments: [
        ("", "''"),
        ("a/b", "a/b"),
        ("3 4", "3 4"),
        ("ß", "ß"),
        ("1\n2", "U+000A"),
        ("1\u{2029}2", "U+2029"),
        (String(repeating: "/", count: 5000), "'/' (U+002F)"),
    ].map { (LongText($0), $1) })
    func badShard(_ text: LongText, expected: String) throws {
        let shard = text.value
        let env = actionsEnvironment(event: "push", ref: "refs/heads/main", refName: "main")
        let error = try #require(keyError { try KeyDerivation.derive(environment: env, shard: shard) })
        #expect(error.exitCode == ExitCode.usage)
        #expect(error.message.contains("--shard"))
        #expect(error.message.contains(expected), "\(error.message)")
        #expect(isOneShortLine(error.message), "\(error.message.debugDescription)")
        #expect(SiloCLI.main(arguments: ["key", "--shard", shard], environment: env) == ExitCode.usage)
        // A usage error whatever the environment: checked before anything is derived.
        #expect(keyError { try KeyDerivation.derive(environment: [:], shard: shard) }?.exitCode == ExitCode.usage)
        #expect(SiloCLI.main(arguments: ["key", "--shard", shard], environment: [:]) == ExitCode.usage)
    }

    @Test("no GITHUB_EVENT_NAME is an error, even with a ref set")
    func noEvent() throws {
        for env in [[:], ["GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main"], ["GITHUB_EVENT_NAME": ""]] {
            let error = try #require(keyError { try KeyCommand.derive(environment: env, shard: nil) })
            #expect(error.exitCode == ExitCode.failure)
            #expect(error.message.contains("GITHUB_EVENT_NAME"))
            #expect(isOneShortLine(error.message))
        }
        #expect(keyError { try KeyDerivation.derive(environment: [:], shard: "3") } != nil)
    }

    // MARK: - Distinctness and stability

    static let rewrittenRefs: [String] = [
        "Main", "main", "MAIN",
        "feature/a", "feature-a", "feature_a", "Feature/A", "feature/A", "feature//a", "feature/a/", "feature.a", "feature a",
        "x/" + String(repeating: "a", count: 63),
        "x/" + String(repeating: "a", count: 62) + "b",
        String(repeating: "a", count: 64) + "1",
        String(repeating: "a", count: 64) + "2",
        String(repeating: "a", count: 64),
        "naïve", "naive", "nai\u{0308}ve", "café", "cafe",
        "日本語", "中文", "🦀", "fix/🦀",
        ".hidden", "-flag", "deps/Bump-serde",
    ]

    @Test("different refs give pairwise different valid keys, and the same ref the same key")
    func distinct() throws {
        var seen: [CacheKey: String] = [:]
        for ref in Self.rewrittenRefs {
            let env = actionsEnvironment(event: "push", ref: "refs/heads/" + ref, refName: ref)
            let key = try KeyDerivation.derive(environment: env)
            // Valid: it goes through validation again unchanged.
            #expect(try CacheKey(validating: key.rawValue) == key)
            #expect(key.rawValue.count <= CacheKey.maxLength)
            if let other = seen[key] {
                Issue.record("'\(ref)' and '\(other)' both give \(key)")
            }
            seen[key] = ref
            // Stable: the same input gives the same key, through both entry points.
            #expect(try KeyDerivation.derive(environment: env) == key)
            #expect(try KeyCommand.derive(environment: env, shard: nil) == key)
        }
        #expect(seen.count == Self.rewrittenRefs.count)
    }

    @Test("a ref that needs rewriting keeps a readable prefix", arguments: [
        ("feature/Foo_bar", "feature-foo_bar"),
        ("Feature/A", "feature-a"),
        ("dependabot/cargo/serde-1.0.200", "dependabot-cargo-serde-1.0.200"),
        ("naïve", "na-ve"),
        (".hidden", "hidden"),
        ("-flag", "flag"),
        ("日本語", "ref"),
        ("x/" + String(repeating: "a", count: 100), "x-" + String(repeating: "a", count: 53)),
    ])
    func readablePrefix(_ ref: String, prefix: String) throws {
        let key = try KeyDerivation.fit(ref)
        #expect(isHashed(key, prefix: prefix), "\(key)")
    }

    @Test("the hash is FNV-1a 64: it names directories, so it must never change")
    func hashIsPinned() {
        // Published FNV-1a 64-bit test vectors, first 8 hex digits.
        #expect(KeyDerivation.hexHash("") == "cbf29ce4")
        #expect(KeyDerivation.hexHash("a") == "af63dc4c")
        #expect(KeyDerivation.hexHash("foobar") == "85944171")
    }

    // MARK: - Through the command line

    @Test("silo key exits 0 when the job is identified, 1 when it is not, 2 on a usage error")
    func throughCLI() throws {
        let (dir, path) = try eventFile(pullRequestPayload(number: 1031, action: "opened"))
        defer { withExtendedLifetime(dir) {} }
        let target = actionsEnvironment(event: "pull_request_target", ref: "refs/heads/main", refName: "main",
                                        headRef: "feature/foo", baseRef: "main", eventPath: path)
        let push = actionsEnvironment(event: "push", ref: "refs/heads/feature/Foo_bar", refName: "feature/Foo_bar")
        #expect(SiloCLI.main(arguments: ["key"], environment: push) == 0)
        #expect(SiloCLI.main(arguments: ["key", "--shard", "3"], environment: push) == 0)
        #expect(SiloCLI.main(arguments: ["key", "--shard=3"], environment: push) == 0)
        #expect(SiloCLI.main(arguments: ["key"], environment: target) == 0)
        #expect(SiloCLI.main(arguments: ["--quiet", "key"], environment: target) == 0)

        var targetWithoutPayload = target
        targetWithoutPayload["GITHUB_EVENT_PATH"] = dir.file("nothing-here.json")
        #expect(SiloCLI.main(arguments: ["key"], environment: targetWithoutPayload) == ExitCode.failure)
        #expect(SiloCLI.main(arguments: ["key"], environment: [:]) == ExitCode.failure)
        #expect(SiloCLI.main(arguments: ["key"], environment: ["HOME": "/home/runner", "CI": "true"]) == ExitCode.failure)

        #expect(SiloCLI.main(arguments: ["key", "--shard"], environment: push) == ExitCode.usage)
        #expect(SiloCLI.main(arguments: ["key", "--shard", "a/b"], environment: push) == ExitCode.usage)
        #expect(SiloCLI.main(arguments: ["key", "extra"], environment: push) == ExitCode.usage)
        #expect(SiloCLI.main(arguments: ["key", "--key", "x"], environment: push) == ExitCode.usage)
    }

    @Test("exec without --key derives the key the same way, and refuses to run when it cannot")
    func execDerivesOrRefuses() throws {
        // Fails before any root is touched or anything is run.
        let root = TempDir("silo-root")
        let status = SiloCLI.main(arguments: ["--root", root.path, "exec", "--", "/bin/true"], environment: ["HOME": "/home/runner"])
        #expect(status == ExitCode.failure)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: root.path)) == [])
    }
}
