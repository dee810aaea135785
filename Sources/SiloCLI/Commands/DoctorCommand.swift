import SiloCore
import Foundation

struct DoctorCommand: SiloCommand {
    static let spec = CommandSpec(
        name: "doctor",
        summary: "Check this host for the known traps of cargo caches on runners, and say how to fix each.",
        options: [
            OptionSpec("--uid", value: "N", help: "The runner uid to check for. Default: the invoking user (SUDO_UID under sudo)."),
            OptionSpec("--json", help: "Print the findings as a JSON array."),
        ],
        discussion: """
        Checks: the root on NFS/SMB or on a container's overlay or tmpfs; the runner uid unable to write the
        root; a filesystem without reflink (seeding falls back to hard links or copies); cargo older than 1.74
        (builds hold no lock); one CARGO_HOME shared by several GitHub runner services; docker on the host (mount
        sources must be made beforehand). Exit 0 when nothing is found, 1 with findings.
        """
    )

    var uid: UInt32?
    var json: Bool

    init(_ args: ParsedArguments) throws(SiloError) {
        uid = try args.value("--uid").map { v throws(SiloError) in try VerifyCommand.id(v, flag: "--uid") }
        json = args.flag("--json")
    }

    func run(_ context: Context) throws(SiloError) -> Int32 {
        let root = try context.root()
        let runner = uid ?? invokingUser(context.environment).uid
        let facts = Doctor.gather(root: root, runnerUID: runner, environment: context.environment)
        let findings = Doctor.findings(facts)
        if json {
            print(try encodeJSON(findings))
        } else if findings.isEmpty {
            print("silo doctor: \(root.path): no known trap found (uid \(runner), \(facts.cargoVersion ?? "no cargo"))")
        } else {
            print("silo doctor: \(root.path): \(findings.count) finding\(findings.count == 1 ? "" : "s") for uid \(runner)")
            for f in findings { print("  \(f.check): \(f.problem)\n    fix: \(f.fix)") }
        }
        return findings.isEmpty ? 0 : ExitCode.failure
    }
}
