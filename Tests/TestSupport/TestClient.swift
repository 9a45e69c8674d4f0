#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation

/// A raw TCP client for socket-level tests. Its blocking calls run on a Dispatch queue, never on the
/// cooperative pool, so a waiting test cannot starve the server's handler tasks.
public final class TestClient: @unchecked Sendable {
    // @unchecked: `fd` and `pending` are only touched inside `blocking`, which runs one call at a time
    // on the client's serial queue.
    public struct Reply: Sendable {
        public let status: Int
        public let headers: [(String, String)]
        public let body: [UInt8]

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }

        public var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    public enum Failure: Error { case connect(Int32), closed, malformed(String), timeout }

    private var fd: Int32 = -1
    private var pending: [UInt8] = []
    private let queue = DispatchQueue(label: "test-client")

    /// Connects to 127.0.0.1:`port`; every later read and write fails with `timeout` after `receiveTimeout`.
    public static func connect(port: Int, receiveTimeout: Duration = .seconds(5)) async throws -> TestClient {
        let client = TestClient()
        try await client.blocking { try client.open(port: port, timeout: receiveTimeout) }
        return client
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
    }

    private func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    private func open(port: Int, timeout: Duration) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard status == 0 else { throw Failure.connect(errno) }
        let (seconds, attoseconds) = timeout.components
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends all of `bytes`.
    public func send(_ bytes: [UInt8]) async throws {
        try await blocking {
            var offset = 0
            while offset < bytes.count {
                let sent = bytes[offset...].withUnsafeBytes { Glibc.send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard sent > 0 else { throw sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? Failure.timeout : Failure.closed }
                offset += sent
            }
        }
    }

    public func send(_ text: String) async throws {
        try await send(Array(text.utf8))
    }

    /// Half-closes the sending side.
    public func shutdownWrite() async throws {
        try await blocking { _ = Glibc.shutdown(self.fd, Int32(SHUT_WR)) }
    }

    /// Reads one response (Content-Length framed, or none for 1xx/204/304/HEAD when `headOnly`).
    public func readReply(headOnly: Bool = false) async throws -> Reply {
        try await blocking { try self.readReplyBlocking(headOnly: headOnly) }
    }

    /// Reads until the server closes; returns everything that arrived. A reset counts as a close.
    public func readToEnd() async throws -> [UInt8] {
        try await blocking {
            var all = self.pending
            self.pending = []
            while true {
                guard let chunk = try self.receiveChunk() else { return all }
                all += chunk
            }
        }
    }

    /// Bytes the server has sent that are not read yet, looked at without waiting (0 when none).
    public func pendingBytes() async throws -> Int {
        try await blocking {
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = buffer.withUnsafeMutableBytes { Glibc.recv(self.fd, $0.baseAddress, $0.count, Int32(MSG_PEEK | MSG_DONTWAIT)) }
            return self.pending.count + max(0, count)
        }
    }

    /// True when the server has closed the connection (EOF or reset) with nothing more to read.
    public func isClosedByServer() async throws -> Bool {
        try await readToEnd().isEmpty
    }

    private func receiveChunk() throws -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
        if count > 0 { return Array(buffer[0..<count]) }
        if count == 0 || errno == ECONNRESET { return nil }
        if errno == EAGAIN || errno == EWOULDBLOCK { throw Failure.timeout }
        throw Failure.closed
    }

    private func readReplyBlocking(headOnly: Bool) throws -> Reply {
        while true {
            if let end = headerEnd() {
                let head = String(decoding: pending[0..<end], as: UTF8.self)
                var lines = head.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst().split(separator: " ")
                guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw Failure.malformed(head) }
                let headers = lines.filter { !$0.isEmpty }.map { line -> (String, String) in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    return (String(parts[0]), parts.count > 1 ? String(parts[1]).trimmingCharacters(in: .whitespaces) : "")
                }
                let length = headOnly || status < 200 ? 0
                    : Int(headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "0") ?? 0
                while pending.count < end + 4 + length {
                    guard let chunk = try receiveChunk() else { throw Failure.closed }
                    pending += chunk
                }
                let body = Array(pending[(end + 4)..<(end + 4 + length)])
                pending.removeFirst(end + 4 + length)
                return Reply(status: status, headers: headers, body: body)
            }
            guard let chunk = try receiveChunk() else { throw Failure.closed }
            pending += chunk
        }
    }

    private func headerEnd() -> Int? {
        guard pending.count >= 4 else { return nil }
        for index in 0...(pending.count - 4)
        where pending[index] == 13 && pending[index + 1] == 10 && pending[index + 2] == 13 && pending[index + 3] == 10 {
            return index
        }
        return nil
    }
}
