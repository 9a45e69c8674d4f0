#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An IP address as 16 bytes (IPv4 as IPv4-mapped IPv6), so one comparison serves both families.
struct IPAddress: Hashable, Sendable {
    let bytes: [UInt8]

    /// Parses `192.0.2.1`, `2001:db8::1` or `::ffff:192.0.2.1`; nil for anything else (names included).
    init?(_ text: some StringProtocol) {
        guard !text.isEmpty, text.utf8.count <= 45 else { return nil }
        var v4 = in_addr()
        var v6 = in6_addr()
        let string = String(text)
        if inet_pton(AF_INET, string, &v4) == 1 {
            bytes = [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF] + withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, string, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    /// An address from its network-order bytes: 4 (IPv4) or 16 (IPv6).
    init?(rawBytes: [UInt8]) {
        switch rawBytes.count {
        case 4: bytes = [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF] + rawBytes
        case 16: bytes = rawBytes
        default: return nil
        }
    }

    /// The address as the server writes client addresses: IPv4 dotted, IPv6 in RFC 5952 form.
    var text: String {
        var output = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let isV4 = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
        let converted: UnsafePointer<CChar>? = isV4
            ? Array(bytes[12...]).withUnsafeBytes { inet_ntop(AF_INET, $0.baseAddress, &output, socklen_t(output.count)) }
            : bytes.withUnsafeBytes { inet_ntop(AF_INET6, $0.baseAddress, &output, socklen_t(output.count)) }
        guard converted != nil else { return "unknown" }
        return String(decoding: output.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Why an address list in the configuration cannot be used.
public struct AddressSetError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// A set of IP addresses and CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`), such as the
/// proxies whose forwarding headers the server believes.
public struct AddressSet: Sendable, Equatable {
    private struct Block: Sendable, Equatable {
        let address: [UInt8]
        let prefixBits: Int

        func contains(_ other: IPAddress) -> Bool {
            var remaining = prefixBits
            for (mine, theirs) in zip(address, other.bytes) where remaining > 0 {
                let bits = min(8, remaining)
                let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                guard mine & mask == theirs & mask else { return false }
                remaining -= bits
            }
            return true
        }
    }

    private var blocks: [Block] = []

    /// The empty set.
    public init() {}

    /// Parses each entry; an entry that is not an address or a block is an error naming it.
    public init(parsing entries: [String]) throws(AddressSetError) {
        for entry in entries.map({ Substring($0).trimmingWhitespace() }) where !entry.isEmpty {
            let parts = entry.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let address = IPAddress(parts[0]) else { throw AddressSetError(description: "'\(entry)' is not an IP address or CIDR block") }
            let isV4 = parts[0].contains(".") && !parts[0].contains(":")
            var prefix = 128
            if parts.count == 2 {
                guard let bits = Int(parts[1]), bits >= 0, bits <= (isV4 ? 32 : 128) else {
                    throw AddressSetError(description: "'\(entry)' has a prefix length outside 0...\(isV4 ? 32 : 128)")
                }
                prefix = isV4 ? bits + 96 : bits
            }
            blocks.append(Block(address: address.bytes, prefixBits: prefix))
        }
    }

    public var isEmpty: Bool { blocks.isEmpty }

    /// Whether `address` (as text) is in the set; text that is not an address never is.
    public func contains(_ address: String) -> Bool {
        guard !blocks.isEmpty, let parsed = IPAddress(address) else { return false }
        return contains(parsed)
    }

    func contains(_ address: IPAddress) -> Bool {
        blocks.contains { $0.contains(address) }
    }
}

/// Who the client is when a trusted proxy stands between it and us. Only a peer in `trusted` is
/// believed, and only for the hops it and other trusted proxies appended: the chain is read from
/// the right (nearest) end, and the first address that is not a trusted proxy is the client. Anything
/// a client wrote itself further left is never reached, so a forged header buys nothing.
enum ClientAddress {
    static func resolve(peer: String, headers: HTTPHeaders, trusted: AddressSet) -> String {
        guard trusted.contains(peer) else { return peer }
        var resolved = peer
        for hop in forwardedChain(headers).reversed() {
            // A hop that is not an address ("unknown", an obfuscated name) ends what can be known:
            // the last trusted proxy is as close to the client as we get.
            guard let address = IPAddress(hop) else { return resolved }
            resolved = address.text
            if !trusted.contains(address) { return resolved }
        }
        return resolved
    }

    /// The client-first chain of addresses from `X-Forwarded-For`, else from `Forwarded` (RFC 7239
    /// `for=`, quotes, brackets and ports removed).
    static func forwardedChain(_ headers: HTTPHeaders) -> [String] {
        let forwardedFor = headers["X-Forwarded-For"].flatMap { $0.split(separator: ",") }.map { $0.trimmingWhitespace() }
        if !forwardedFor.isEmpty { return forwardedFor }
        var chain: [String] = []
        for element in headers["Forwarded"].flatMap({ $0.split(separator: ",") }) {
            for pair in element.split(separator: ";") {
                let trimmed = pair.trimmingWhitespace()
                guard trimmed.lowercased().hasPrefix("for=") else { continue }
                chain.append(nodeAddress(trimmed.dropFirst(4)))
            }
        }
        return chain
    }

    /// `"[2001:db8::1]:4711"` -> `2001:db8::1`; `192.0.2.1:80` -> `192.0.2.1`.
    private static func nodeAddress(_ node: Substring) -> String {
        var text = node.trimmingWhitespace()
        if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = String(text.dropFirst().dropLast()) }
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") { return String(text[text.index(after: text.startIndex)..<close]) }
        if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") { return String(text[..<colon]) }
        return text
    }
}
