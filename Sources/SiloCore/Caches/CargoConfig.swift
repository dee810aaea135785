// Carrying the invoking user's cargo configuration into a cache.
//
// A cache is a fresh CARGO_HOME, so without this a fleet's source replacement (a mirror, a vendored
// registry), private registries and [net] settings would silently stop applying. The file is copied,
// not linked: a job may edit its cache's config without changing the user's. Credentials are copied
// only when asked for (--with-credentials), and removed from the cache otherwise, so a token never
// lingers in a cache that a later, less trusted job of the same key will read.

import SiloSystem
#if canImport(Glibc)
import Glibc
#endif

public struct CargoConfigSource: Sendable {
    /// The config file to carry, if any.
    public let config: String?
    /// The credentials file to carry when asked, if any.
    public let credentials: String?

    /// `--cargo-config FILE`, else `config.toml` (or legacy `config`) of `$CARGO_HOME`, else of `~/.cargo`.
    /// Homes inside the silo root are skipped: a job that runs silo again must not copy its own cache.
    public static func locate(explicit: String?, environment env: [String: String], root: SiloRoot) throws(SiloError) -> CargoConfigSource {
        var homes: [String] = []
        if let h = env["CARGO_HOME"], !h.isEmpty { homes.append(h) }
        if let home = env["HOME"].flatMap({ $0.isEmpty ? nil : $0 }) ?? Identity.passwdHome() { homes.append(home + "/.cargo") }
        homes = homes.filter { !$0.hasPrefix(root.path + "/") }
        let credentials = homes.lazy.flatMap { h in ["credentials.toml", "credentials"].lazy.map { h + "/" + $0 } }.first(where: isRegularFile)
        if let explicit {
            guard isRegularFile(explicit) else {
                throw .usage("--cargo-config '\(explicit)' is not a readable regular file; expected a cargo config.toml")
            }
            return CargoConfigSource(config: explicit, credentials: credentials)
        }
        let config = homes.lazy.flatMap { h in ["config.toml", "config"].lazy.map { h + "/" + $0 } }.first(where: isRegularFile)
        return CargoConfigSource(config: config, credentials: credentials)
    }

    static func isRegularFile(_ path: String) -> Bool {
        // stat, following links: a dotfiles manager commonly links ~/.cargo/config.toml.
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && access(path, R_OK) == 0
    }

    /// Writes the config (and credentials when asked) into `home`, replacing what an earlier run left.
    public func install(into home: String, withCredentials: Bool) throws(SiloError) {
        do {
            try copy(config, to: home + "/config.toml", mode: 0o644)
            try copy(withCredentials ? credentials : nil, to: home + "/credentials.toml", mode: 0o600)
            if unlink(home + "/credentials") != 0 && errno != ENOENT { throw Errno.current("unlink", path: home + "/credentials") }
        } catch let e as SiloError {
            throw e
        } catch {
            throw SiloError("cannot carry cargo config into \(home): \(error)")
        }
    }

    /// Copies `source` to `dest` atomically, or removes `dest` when there is no source.
    func copy(_ source: String?, to dest: String, mode: mode_t) throws {
        guard let source else {
            if unlink(dest) != 0 && errno != ENOENT { throw Errno.current("unlink", path: dest) }
            return
        }
        let fd = try FileDescriptor.open(source, [.readOnly, .closeOnExec])
        defer { fd.close() }
        let contents = String(decoding: try fd.readAll(), as: UTF8.self)
        if (try? FileSystem.read(dest)) == contents { return }
        try FileSystem.writeAtomically(dest, contents, mode: mode)
    }
}
