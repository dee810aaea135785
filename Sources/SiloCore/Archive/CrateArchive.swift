// Reading a `.crate`: gzip over a tar, streamed, each archive decompressed exactly once.
//
// What `silo verify` needs from an archive is its member list (path, type, mode, size), and with
// --deep the contents, compared against the extracted files as they stream past, never buffered
// whole. The sha256 of the compressed bytes (for the index's `cksum`) is computed in the same pass
// over the file, so checking a crate reads its .crate once.
//
// Tar: 512-byte headers; ustar `prefix` + `name`, GNU long names (type 'L'), pax `path` records
// (type 'x'). Cargo's archives hold regular files only, all under `<name>-<version>/`; anything
// else (a link, a device) is reported as what it is so the verifier can call it wrong.

import SiloSystem
import CZlib
import CCrypto
#if canImport(Glibc)
import Glibc
#endif

/// A failure to read an archive: truncated, not gzip, a tar header that does not parse.
public struct ArchiveError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ d: String) { description = d }
}

public struct ArchiveMember: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case file, directory, symlink, other }
    public var path: String
    public var kind: Kind
    public var mode: UInt32
    public var size: Int64
}

/// Streams the compressed bytes of a file through sha256 and zlib's inflate.
final class GzipStream {
    let fd: FileDescriptor
    var stream = z_stream()
    /// Compressed input; allocated once, because zlib keeps a pointer into it between calls.
    let input: UnsafeMutablePointer<UInt8>
    static let inputSize = 1 << 16
    var ended = false
    let digest: OpaquePointer
    var compressedBytes: Int64 = 0

    init(fd: FileDescriptor) throws(ArchiveError) {
        self.fd = fd
        guard let ctx = EVP_MD_CTX_new() else { throw ArchiveError("cannot allocate a sha256 context") }
        digest = ctx
        EVP_DigestInit_ex(ctx, EVP_sha256(), nil)
        input = .allocate(capacity: Self.inputSize)
        // 16 + MAX_WBITS: expect a gzip header and trailer (and check the trailer's CRC-32).
        let rc = inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            input.deallocate()
            EVP_MD_CTX_free(ctx)
            throw ArchiveError("zlib inflateInit failed (\(rc))")
        }
    }

    deinit {
        inflateEnd(&stream)
        input.deallocate()
        EVP_MD_CTX_free(digest)
    }

    /// Fills `buffer` with decompressed bytes; returns how many (fewer only at the end of the stream).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ArchiveError) -> Int {
        if ended { return 0 }
        stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(buffer.count)
        while stream.avail_out > 0 {
            if stream.avail_in == 0 {
                let n = Glibc.read(fd.rawValue, input, Self.inputSize)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ArchiveError("read: \(String(cString: strerror(errno)))")
                }
                if n == 0 { throw ArchiveError("truncated: the gzip stream ends early, after \(compressedBytes) compressed bytes") }
                compressedBytes += Int64(n)
                EVP_DigestUpdate(digest, input, n)
                stream.next_in = input
                stream.avail_in = uInt(n)
            }
            let status = inflate(&stream, Z_NO_FLUSH)
            if status == Z_STREAM_END {
                ended = true
                break
            }
            if status != Z_OK && status != Z_BUF_ERROR {
                throw ArchiveError("corrupt gzip data (zlib error \(status)\(stream.msg.map { ": " + String(cString: $0) } ?? ""))")
            }
        }
        return buffer.count - Int(stream.avail_out)
    }

    /// Reads the rest of the file into the digest and returns the sha256 of the whole file, hex.
    func finishDigest() -> String {
        while true {
            let n = Glibc.read(fd.rawValue, input, Self.inputSize)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            EVP_DigestUpdate(digest, input, n)
        }
        var md = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var len: UInt32 = 0
        EVP_DigestFinal_ex(digest, &md, &len)
        return md.prefix(Int(len)).map { hexByte($0) }.joined()
    }
}

func hexByte(_ b: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
}

/// A .crate read once from start to end: its members, and the sha256 of the file.
public struct CrateContents: Sendable {
    public var members: [ArchiveMember]
    public var sha256: String
}

public enum CrateArchive {
    /// Reads the archive at `path`. `visit` is called for each regular file member with a reader of
    /// its content (for --deep); with `visit` nil, contents are skipped (still decompressed: tar
    /// headers sit between them).
    public static func read(_ path: String, visit: ((ArchiveMember, inout MemberReader) throws -> Void)? = nil) throws -> CrateContents {
        let fd = try FileDescriptor.open(path, [.readOnly, .noFollow, .closeOnExec])
        defer { fd.close() }
        let gz = try GzipStream(fd: fd)
        let reader = TarReader(gz: gz)
        var members: [ArchiveMember] = []
        while let member = try reader.next() {
            members.append(member)
            var content = MemberReader(tar: reader, remaining: member.kind == .file ? member.size : 0)
            if member.kind == .file, let visit { try visit(member, &content) }
            try content.skipRest()
            try reader.skipPadding(after: member.kind == .file ? member.size : 0)
        }
        return CrateContents(members: members, sha256: gz.finishDigest())
    }
}

/// The bytes of one archive member, read in chunks.
public struct MemberReader {
    let tar: TarReader
    var remaining: Int64

    /// Up to `max` bytes of the member; empty at its end.
    public mutating func read(max: Int = 1 << 16) throws -> [UInt8] {
        guard remaining > 0 else { return [] }
        let n = Int(min(Int64(max), remaining))
        let bytes = try tar.readExactly(n)
        remaining -= Int64(n)
        return bytes
    }

    mutating func skipRest() throws {
        while remaining > 0 { _ = try read() }
    }
}

/// Tar headers over the decompressed stream; shared by reference with each member's reader.
final class TarReader {
    let gz: GzipStream
    var buffer = [UInt8]()
    var offset = 0

    init(gz: GzipStream) { self.gz = gz }

    func readExactly(_ n: Int) throws -> [UInt8] {
        while buffer.count - offset < n {
            if offset > 0 { buffer.removeFirst(offset); offset = 0 }
            var chunk = [UInt8](repeating: 0, count: max(1 << 16, n))
            let got = try chunk.withUnsafeMutableBytes { raw throws(ArchiveError) in try gz.read(into: raw) }
            if got == 0 { throw ArchiveError("truncated: the tar stream ends inside a member") }
            buffer.append(contentsOf: chunk[0..<got])
        }
        let out = Array(buffer[offset..<(offset + n)])
        offset += n
        return out
    }

    func skipPadding(after size: Int64) throws {
        let pad = Int((512 - size % 512) % 512)
        if pad > 0 { _ = try readExactly(pad) }
    }

    /// The next member, or nil at the end-of-archive marker (a zero block).
    func next() throws -> ArchiveMember? {
        var longName: String?
        while true {
            let header = try readExactly(512)
            if header.allSatisfy({ $0 == 0 }) { return nil }
            guard Self.checksumMatches(header) else { throw ArchiveError("corrupt tar header (checksum mismatch)") }
            let type = header[156]
            guard let size = Self.octal(header[124..<136]) else { throw ArchiveError("corrupt tar header (size)") }
            switch type {
            case UInt8(ascii: "L"), UInt8(ascii: "x"):
                // GNU long name, or a pax extended header: the next member's real path.
                let data = try readExactly(Int(size))
                try skipPadding(after: size)
                if type == UInt8(ascii: "L") {
                    longName = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
                } else if let path = Self.paxPath(data) {
                    longName = path
                }
                continue
            case UInt8(ascii: "g"):
                _ = try readExactly(Int(size)); try skipPadding(after: size); continue
            default:
                break
            }
            var path = longName ?? Self.string(header[0..<100])
            if longName == nil, header[257..<262].elementsEqual(Array("ustar".utf8)) {
                let prefix = Self.string(header[345..<500])
                if !prefix.isEmpty { path = prefix + "/" + path }
            }
            let mode = UInt32(Self.octal(header[100..<108]) ?? 0o644)
            let kind: ArchiveMember.Kind
            switch type {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): kind = .file
            case UInt8(ascii: "5"): kind = .directory
            case UInt8(ascii: "2"): kind = .symlink
            default: kind = .other
            }
            return ArchiveMember(path: path, kind: kind, mode: mode, size: kind == .file ? size : 0)
        }
    }

    static func string(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    static func octal(_ bytes: ArraySlice<UInt8>) -> Int64? {
        // GNU base-256 for sizes over 8 GiB: high bit of the first byte set.
        if let first = bytes.first, first & 0x80 != 0 {
            return bytes.dropFirst().reduce(Int64(first & 0x7f)) { $0 << 8 | Int64($1) }
        }
        let text = bytes.prefix { $0 != 0 && $0 != UInt8(ascii: " ") }.drop { $0 == UInt8(ascii: " ") }
        if text.isEmpty { return 0 }
        var v: Int64 = 0
        for b in text {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "7") else { return nil }
            v = v * 8 + Int64(b - UInt8(ascii: "0"))
        }
        return v
    }

    static func checksumMatches(_ header: [UInt8]) -> Bool {
        guard let stored = octal(header[148..<156]) else { return false }
        var sum: Int64 = 0
        for (i, b) in header.enumerated() { sum += (148..<156).contains(i) ? 32 : Int64(b) }
        return sum == stored
    }

    /// The `path` record of a pax header ("<len> path=<value>\n" records).
    static func paxPath(_ data: [UInt8]) -> String? {
        var i = 0
        while i < data.count {
            guard let space = data[i...].firstIndex(of: UInt8(ascii: " ")), let len = Int(String(decoding: data[i..<space], as: UTF8.self)), len > 0 else { return nil }
            let record = data[(space + 1)..<min(data.count, i + len)]
            if let eq = record.firstIndex(of: UInt8(ascii: "=")), String(decoding: record[record.startIndex..<eq], as: UTF8.self) == "path" {
                return String(decoding: record[(eq + 1)...].dropLast(record.last == 10 ? 1 : 0), as: UTF8.self)
            }
            i += len
        }
        return nil
    }
}
