// Paths the user gives: made absolute once, so that a later chdir or a message never depends on
// the working directory.

#if canImport(Glibc)
import Glibc
#endif

/// `p` as an absolute path without trailing slashes; relative paths are taken from the working
/// directory. `what` names the flag or variable in the error.
public func absolutePath(_ p: String, what: String) throws(SiloError) -> String {
    if p.isEmpty { throw .usage("\(what) '' is empty; expected a directory path") }
    var path = p
    if !path.hasPrefix("/") {
        guard let cwd = getcwd(nil, 0) else { throw SiloError("\(what) '\(displayable(p))' is relative and the working directory is unknown; pass an absolute path") }
        defer { free(cwd) }
        path = String(cString: cwd) + "/" + p
    }
    while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
    return path
}
