// `make install`: a release binary with the Swift runtime linked statically, its man page, the
// systemd units and the runner hooks. The installed binary must run where no Swift toolchain is:
// the test hides the toolchain's directory under a tmpfs in a private mount namespace (and checks
// that the hiding works: the debug build, linked to the toolchain's runtime, cannot start there).

import Foundation
import Testing
@testable import SiloCLI

@Suite("install", .serialized, .enabled(if: runningAsRoot, "needs root for a mount namespace"))
struct InstallTests {
    /// scripts/test installs into .build/install-test before the tests run; run alone, the test installs itself.
    static let destdir = Repo.root + "/.build/install-test"
    static let prefix = "/usr/local"

    func installed() throws -> String {
        let bin = Self.destdir + Self.prefix + "/bin/silo"
        if !FileManager.default.isExecutableFile(atPath: bin) {
            let r = try run("/usr/bin/make", ["-C", Repo.root, "install", "DESTDIR=\(Self.destdir)", "PREFIX=\(Self.prefix)"])
            guard r.status == 0 else { throw TestFailure("make install failed: \(r.stderr)") }
        }
        return Self.destdir + Self.prefix
    }

    /// The toolchain's top directory (the one holding usr/bin/swift).
    var toolchain: String {
        let swift = (try? run("/bin/sh", ["-c", "command -v swift"]))?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return ((swift as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent.replacingOccurrences(of: "/usr", with: "", options: .anchored.union(.backwards))
    }

    @Test("the installed binary runs with the Swift toolchain hidden; version, man page, units and hooks are in place")
    func installedBinary() throws {
        let prefix = try installed()
        let silo = prefix + "/bin/silo"
        let hide = toolchain
        #expect(!hide.isEmpty && exists(hide + "/usr/bin/swift"), "toolchain at \(hide)")
        let root = TempDir()
        let script = """
            mount -t tmpfs silo-hide \(hide) && \
            if \(Repo.silo) --version >/dev/null 2>&1; then echo "debug build ran: the toolchain is not hidden"; exit 3; fi; \
            \(silo) --version && \(silo) --root \(root.path)/r exec --key k -- sh -c 'echo job ran in $SILO_KEY'
            """
        let r = try run("/usr/bin/unshare", ["--mount", "/bin/sh", "-c", script])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let commit = try run("/usr/bin/git", ["-C", Repo.root, "rev-parse", "--short=12", "HEAD"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(r.stdout.hasPrefix("silo \(SiloCLI.version) (commit \(commit)"), "\(r.stdout)")
        #expect(r.stdout.contains("job ran in k"))
        let ldd = try run("/usr/bin/ldd", [silo]).stdout
        #expect(!ldd.contains("libswift") && !ldd.contains("libFoundation"), "no Swift runtime library: \(ldd)")

        let man = readFile(prefix + "/share/man/man1/silo.1")
        #expect(man.hasPrefix(".TH SILO 1"))
        for c in SiloCLI.commandTypes.map({ $0.spec.name }) { #expect(man.contains(".SS \(c.replacingOccurrences(of: "-", with: "\\-"))\n"), "man page has \(c)") }
        #expect(man.contains("\\-\\-log\\-format"), "and the global options")
        let unit = readFile(prefix + "/lib/systemd/system/silo-reap.service")
        #expect(unit.contains("ExecStart=\(Self.prefix)/bin/silo reap"))
        #expect(exists(prefix + "/lib/systemd/system/silo-reap.timer"))
        #expect(readFile(prefix + "/share/silo/hooks/job-started.sh").contains("exec \(Self.prefix)/bin/silo hook job-started"))
    }

    @Test("the man page is generated from the same specs as --help")
    func manMatchesHelp() throws {
        let man = Help.manPage(commands: SiloCLI.commandTypes.map { $0.spec }, globals: SiloCLI.globalOptions)
        for spec in SiloCLI.commandTypes.map({ $0.spec }) {
            for o in spec.options {
                #expect(man.contains(".B " + o.name.replacingOccurrences(of: "-", with: "\\-")), "\(spec.name) \(o.name)")
            }
        }
        let r = try run(Repo.silo, ["--man"])
        #expect(r.status == 0 && r.stdout == man)
    }
}
