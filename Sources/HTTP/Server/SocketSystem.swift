#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system call, with the errno it left.
public struct SocketError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The libc function that failed.
    public let call: String
    /// `errno` right after the call.
    public let errno: Int32

    public var description: String { "\(call) failed: \(String(cString: strerror(errno))) (errno \(errno))" }

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }
}

/// The outcome of one non-blocking read or write.
public enum IOResult: Equatable, Sendable {
    case transferred(Int)
    case endOfFile
    case wouldBlock
    case failed(SocketError)
}

/// Every libc socket call the server makes goes through here, so errors become Swift values at once and
/// the rest of the server never sees a raw return code.
enum SocketSystem {
    /// A bound, listening, non-blocking socket for `host:port`; `port` 0 asks for an ephemeral port.
    static func listen(host: String, port: Int, backlog: Int32) throws(SocketError) -> (fd: Int32, port: Int) {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else { throw SocketError(call: "getaddrinfo(\(host))", errno: EINVAL) }
        defer { freeaddrinfo(list) }
        var lastError = SocketError(call: "bind", errno: EADDRNOTAVAIL)
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            do {
                let fd = try bindAndListen(info.pointee, backlog: backlog)
                return (fd, try localPort(fd))
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private static func bindAndListen(_ info: addrinfo, backlog: Int32) throws(SocketError) -> Int32 {
        let fd = socket(info.ai_family, info.ai_socktype | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), info.ai_protocol)
        guard fd >= 0 else { throw SocketError(call: "socket", errno: errno) }
        var on: Int32 = 1
        var off: Int32 = 0
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        if info.ai_family == AF_INET6 {
            // Dual-stack: `::` also accepts IPv4 clients.
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(MemoryLayout<Int32>.size))
        }
        guard bind(fd, info.ai_addr, info.ai_addrlen) == 0 else {
            let error = SocketError(call: "bind", errno: errno)
            Glibc.close(fd)
            throw error
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let error = SocketError(call: "listen", errno: errno)
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    private static func localPort(_ fd: Int32) throws(SocketError) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard status == 0 else { throw SocketError(call: "getsockname", errno: errno) }
        return withUnsafeBytes(of: &storage) { raw in
            // sin_port and sin6_port share the same offset and network byte order.
            Int(UInt16(raw[2]) << 8 | UInt16(raw[3]))
        }
    }

    /// Accepts one pending connection as a non-blocking socket with Nagle off, so each response leaves
    /// in one segment instead of waiting on the peer's delayed ACK.
    /// The peer's address comes back as text (`192.0.2.1`, `2001:db8::1`; an IPv4 client of a
    /// dual-stack socket without its `::ffff:` prefix).
    static func accept(_ listener: Int32) -> Result<(fd: Int32, peer: String), SocketError>? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        // Glibc's module map hides accept4 (it needs _GNU_SOURCE), so flags are set with fcntl.
        let fd = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(listener, $0, &length) }
        }
        guard fd >= 0 else {
            let code = errno
            if code == EAGAIN || code == EWOULDBLOCK || code == EINTR || code == ECONNABORTED { return nil }
            return .failure(SocketError(call: "accept", errno: code))
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var on: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        return .success((fd, addressText(storage)))
    }

    /// The peer's address as `IPAddress.text` writes it (an IPv4 client of a dual-stack socket as IPv4).
    private static func addressText(_ storage: sockaddr_storage) -> String {
        var storage = storage
        let family = Int32(storage.ss_family)
        let address: IPAddress? = withUnsafePointer(to: &storage) { pointer in
            let raw = UnsafeRawPointer(pointer)
            switch family {
            case AF_INET:
                return withUnsafeBytes(of: raw.assumingMemoryBound(to: sockaddr_in.self).pointee.sin_addr) { IPAddress(rawBytes: Array($0)) }
            case AF_INET6:
                return withUnsafeBytes(of: raw.assumingMemoryBound(to: sockaddr_in6.self).pointee.sin6_addr) { IPAddress(rawBytes: Array($0)) }
            default:
                return nil
            }
        }
        return address?.text ?? "unknown"
    }

    /// One non-blocking read into `buffer`.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> IOResult {
        let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
        if count > 0 { return .transferred(count) }
        if count == 0 { return .endOfFile }
        return classify(errno, call: "read")
    }

    /// One non-blocking send; MSG_NOSIGNAL turns a vanished peer into EPIPE instead of SIGPIPE.
    static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> IOResult {
        let count = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
        if count >= 0 { return .transferred(count) }
        return classify(errno, call: "send")
    }

    /// Closes a descriptor; errors are ignored, as POSIX leaves the descriptor closed either way.
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Sends FIN after the last response while keeping the read side open.
    static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    private static func classify(_ code: Int32, call: String) -> IOResult {
        if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return .wouldBlock }
        return .failed(SocketError(call: call, errno: code))
    }
}
