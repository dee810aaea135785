// The one place where a failed syscall becomes a Swift error, and where EINTR is retried.
#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: the errno it set, the call's name, and the path it was about, if any.
public struct Errno: Error, Equatable, CustomStringConvertible, Sendable {
    public let code: Int32
    public let call: String
    public let path: String?

    public init(_ code: Int32, call: String, path: String? = nil) {
        self.code = code
        self.call = call
        self.path = path
    }

    /// The errno the calling thread has right now.
    public static func current(_ call: String, path: String? = nil) -> Errno {
        Errno(errno, call: call, path: path)
    }

    public var message: String { String(cString: strerror(code)) }

    public var description: String {
        if let path { return "\(call) \(path): \(message) (os error \(code))" }
        return "\(call): \(message) (os error \(code))"
    }

    public static func == (a: Errno, b: Errno) -> Bool { a.code == b.code }
    public static func ~= (a: Int32, b: Errno) -> Bool { a == b.code }
}

/// Runs `body` until it does not fail with EINTR. `body` returns -1 and sets errno on failure,
/// the C convention of every call wrapped here.
@inline(__always)
public func retryingEINTR<T: BinaryInteger>(_ call: String, path: String? = nil, _ body: () -> T) throws(Errno) -> T {
    while true {
        let r = body()
        if r != -1 { return r }
        let e = errno
        if e != EINTR { throw Errno(e, call: call, path: path) }
    }
}
