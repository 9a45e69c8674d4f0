/// A request method token (RFC 9110 §9). Any valid token is representable; the common ones are named.
public struct HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    /// The method exactly as sent; methods are case-sensitive (RFC 9110 §9.1).
    public let rawValue: String

    /// Wraps a method token that the caller has already validated.
    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    public static let get = HTTPMethod("GET")
    public static let head = HTTPMethod("HEAD")
    public static let post = HTTPMethod("POST")
    public static let put = HTTPMethod("PUT")
    public static let patch = HTTPMethod("PATCH")
    public static let delete = HTTPMethod("DELETE")
    public static let options = HTTPMethod("OPTIONS")
    public static let connect = HTTPMethod("CONNECT")
}
