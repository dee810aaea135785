// A thin wrapper over the sqlite3 C API: a connection, prepared statements, typed columns.
// Every failing call becomes an `SQLiteError` carrying SQLite's result code and message.

import CSQLite
#if canImport(Glibc)
import Glibc
#endif

public struct SQLiteError: Error, CustomStringConvertible {
    public let code: Int32
    public let message: String
    /// The OS error under an I/O error (sqlite3_system_errno), 0 when there is none: "disk I/O
    /// error" alone does not say that the disk is full.
    public var systemErrno: Int32 = 0
    /// SQLITE_BUSY or SQLITE_LOCKED: another connection holds what this one needs.
    public var isBusy: Bool { code & 0xff == SQLITE_BUSY || code & 0xff == SQLITE_LOCKED }
    /// SQLITE_CORRUPT or SQLITE_NOTADB: the file is not a usable database and must be rebuilt.
    public var isCorruption: Bool { code & 0xff == SQLITE_CORRUPT || code & 0xff == SQLITE_NOTADB }
    public var description: String {
        "\(message) (sqlite error \(code))" + (systemErrno != 0 ? ": \(String(cString: strerror(systemErrno))) (os error \(systemErrno))" : "")
    }
}

/// SQLite wants this destructor to copy bound text; the C macro is not imported into Swift.
private let SQLITE_TRANSIENT = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

public final class SQLiteConnection {
    let handle: OpaquePointer

    public enum Access: Sendable {
        case readWrite
        /// Read-only, with SQLite's usual locking (a WAL database gets its -shm and -wal files).
        case readOnly
        /// Read-only without locks or side files (URI `immutable=1`): reads the main file as of its
        /// last checkpoint and writes nothing at all next to it, so a dry run leaves no trace.
        case immutable
    }

    public init(path: String, busyTimeoutMilliseconds: Int32, access: Access = .readWrite) throws(SQLiteError) {
        var db: OpaquePointer?
        let rc: Int32
        switch access {
        case .readWrite: rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW, nil)
        case .readOnly: rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, nil)
        case .immutable: rc = sqlite3_open_v2("file:" + Self.uriEscaped(path) + "?immutable=1", &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOFOLLOW, nil)
        }
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            let system = db.map { sqlite3_system_errno($0) } ?? 0
            sqlite3_close(db)
            var e = SQLiteError(code: rc, message: message)
            e.systemErrno = system
            throw e
        }
        handle = db
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
    }

    deinit { sqlite3_close(handle) }

    /// A path as the path part of a file: URI (RFC 3986): everything but unreserved characters and
    /// `/` percent-encoded, so `?`, `#` and `%` in a root's path keep their meaning as characters.
    static func uriEscaped(_ path: String) -> String {
        var out = ""
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }

    func error(_ rc: Int32) -> SQLiteError {
        var e = SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(handle)))
        e.systemErrno = sqlite3_system_errno(handle)
        return e
    }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws(SQLiteError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        if rc != SQLITE_OK { throw error(rc) }
    }

    public func prepare(_ sql: String) throws(SQLiteError) -> Statement {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc) }
        return Statement(connection: self, handle: stmt)
    }

    /// Runs a statement with `values` bound to its parameters, returning every row.
    @discardableResult
    public func query(_ sql: String, _ values: [SQLiteValue] = []) throws(SQLiteError) -> [Row] {
        let stmt = try prepare(sql)
        try stmt.bind(values)
        var rows: [Row] = []
        while let row = try stmt.step() { rows.append(row) }
        return rows
    }

    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// Runs `body` inside BEGIN IMMEDIATE ... COMMIT: the write lock is taken up front, so two
    /// silo processes never both read, then both try to upgrade and one fails with SQLITE_BUSY.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}

public enum SQLiteValue {
    case integer(Int64)
    case real(Double)
    case text(String)
    case null
}

public struct Row {
    public let values: [SQLiteValue]
    public func int(_ i: Int) -> Int64? { if case .integer(let v) = values[i] { return v }; if case .real(let d) = values[i] { return Int64(d) }; return nil }
    public func double(_ i: Int) -> Double? { if case .real(let v) = values[i] { return v }; if case .integer(let n) = values[i] { return Double(n) }; return nil }
    public func text(_ i: Int) -> String? { if case .text(let v) = values[i] { return v }; return nil }
}

public final class Statement {
    let connection: SQLiteConnection
    let handle: OpaquePointer

    init(connection: SQLiteConnection, handle: OpaquePointer) {
        self.connection = connection
        self.handle = handle
    }

    deinit { sqlite3_finalize(handle) }

    public func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .integer(let v): rc = sqlite3_bind_int64(handle, index, v)
            case .real(let v): rc = sqlite3_bind_double(handle, index, v)
            case .text(let v): rc = sqlite3_bind_text(handle, index, v, -1, SQLITE_TRANSIENT)
            case .null: rc = sqlite3_bind_null(handle, index)
            }
            if rc != SQLITE_OK { throw connection.error(rc) }
        }
    }

    /// The next row, or nil when the statement is done.
    public func step() throws(SQLiteError) -> Row? {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_DONE { return nil }
        guard rc == SQLITE_ROW else { throw connection.error(rc) }
        var values: [SQLiteValue] = []
        for i in 0..<sqlite3_column_count(handle) {
            switch sqlite3_column_type(handle, i) {
            case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(handle, i)))
            case SQLITE_FLOAT: values.append(.real(sqlite3_column_double(handle, i)))
            case SQLITE_TEXT: values.append(.text(String(cString: sqlite3_column_text(handle, i))))
            default: values.append(.null)
            }
        }
        return Row(values: values)
    }
}
