import SiloCore
import Foundation

struct KeyCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "key",
        summary: "Print the cache key for this CI job, derived from the GitHub Actions environment.",
        options: [
            OptionSpec("--shard", value: "S", help: "Append -s<S>, for jobs of one ref that must not share a cache (matrix shards)."),
        ],
        discussion: """
        pull_request and pull_request_target give pr-<N>; merge_group gives mq-<base>-pr-<N>; push, schedule,
        workflow_dispatch and other events give the ref name. A ref that does not fit [A-Za-z0-9._-]{1,64}
        becomes a readable prefix plus 8 hex digits of its hash. Fails when nothing identifies the job.
        """
    )

    var shard: String?

    init(_ args: ParsedArguments) throws(SiloError) {
        shard = args.value("--shard")
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        print(try Self.derive(environment: context.environment, shard: shard).rawValue)
        return 0
    }

    static func derive(environment: [String: String], shard: String?) throws(SiloError) -> CacheKey {
        let payload = environment["GITHUB_EVENT_PATH"].flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }
        return try KeyDerivation.derive(environment: environment, shard: shard, eventPayload: payload)
    }
}
