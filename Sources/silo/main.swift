// The silo executable: everything lives in SiloCLI and SiloCore.
import SiloCLI
import Foundation

exit(SiloCLI.main(arguments: Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment))
