// The errors silo reports to its user: one line naming the bad value and what was expected, and
// the exit code the documentation promises for that kind of failure.

/// Exit codes silo itself uses; a job's own status passes through `silo exec` unchanged.
public enum ExitCode {
    public static let failure: Int32 = 1
    /// A usage error: unknown command or flag, missing or malformed value.
    public static let usage: Int32 = 2
    /// The key is busy and `--wait` ran out (EX_TEMPFAIL from sysexits.h: try again later).
    public static let busy: Int32 = 75
    /// The command exists but cannot be executed (the shell convention).
    public static let cannotExecute: Int32 = 126
    /// The command does not exist (the shell convention).
    public static let commandNotFound: Int32 = 127
}

public struct SiloError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public let exitCode: Int32

    public init(_ message: String, exitCode: Int32 = ExitCode.failure) {
        self.message = message
        self.exitCode = exitCode
    }

    public static func usage(_ message: String) -> SiloError { SiloError(message, exitCode: ExitCode.usage) }

    public var description: String { message }
}
