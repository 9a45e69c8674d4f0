#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials

/// Just enough of an HTTP/1.1 client for `verify --url`: GET over plain TCP, one request per
/// connection, the whole body read. TLS comes with the TLS work; until then use an http:// URL (or
/// a local TLS-terminating proxy).
struct HTTPClient {
    struct Reply {
        let status: Int
        let body: [UInt8]
    }

    let host: String
    let port: String
    let basePath: String
    let apiKey: String?

    init(url: String, apiKey: String?) throws(CLIError) {
        guard url.hasPrefix("http://") else { throw CLIError("--url must be an http:// URL (https needs the TLS support that is not built yet)") }
        let rest = url.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        basePath = String(rest.dropFirst(authority.count)).trimmingSuffix("/")
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            host = String(authority[..<colon]).trimmingCharacters(["[", "]"])
            port = String(authority[authority.index(after: colon)...])
        } else {
            host = String(authority).trimmingCharacters(["[", "]"])
            port = "80"
        }
        guard !host.isEmpty, Int(port) != nil else { throw CLIError("--url has no usable host and port") }
        self.apiKey = apiKey
    }

    func get(_ path: String) throws(CLIError) -> Reply {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, port, &hints, &list) == 0, let first = list else { throw CLIError("cannot resolve \(host)") }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw CLIError("cannot open a socket") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else { throw CLIError("cannot connect to \(host):\(port)") }
        var head = "GET \(basePath)\(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\nAccept: */*\r\n"
        if let apiKey { head += "Authorization: Bearer \(apiKey)\r\n" }
        let request = Array((head + "\r\n").utf8)
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw CLIError("the connection to \(host) failed while sending") }
            sent += count
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            guard count > 0 else { throw CLIError("the connection to \(host) failed while reading") }
            response += buffer[0..<count]
        }
        return try Self.parse(response)
    }

    /// Status and body of a `Connection: close` response framed by Content-Length or by the close.
    static func parse(_ response: [UInt8]) throws(CLIError) -> Reply {
        guard let end = (0..<max(0, response.count - 3)).first(where: { response[$0] == 13 && response[$0 + 1] == 10 && response[$0 + 2] == 13 && response[$0 + 3] == 10 }) else {
            throw CLIError("the server's answer is not HTTP")
        }
        let headText = String(decoding: response[..<end], as: UTF8.self)
        let lines = headText.split(separator: "\r\n")
        let statusFields = lines.first?.split(separator: " ") ?? []
        guard statusFields.count >= 2, statusFields[0].hasPrefix("HTTP/1."), let status = Int(statusFields[1]) else {
            throw CLIError("the server's answer is not HTTP")
        }
        var body = Array(response[(end + 4)...])
        if let lengthLine = lines.dropFirst().first(where: { $0.lowercased().hasPrefix("content-length:") }),
           let length = Int(lengthLine.dropFirst("content-length:".count).filter { $0 != " " }) {
            guard length >= 0 else { throw CLIError("the server's answer has a negative Content-Length") }
            guard body.count >= length else { throw CLIError("the server's answer was cut short") }
            body = Array(body.prefix(length))
        }
        return Reply(status: status, body: body)
    }
}

private extension String {
    func trimmingSuffix(_ suffix: Character) -> String {
        var text = self
        while text.last == suffix { text.removeLast() }
        return text
    }
}
