/// A value that can be read from one path segment, e.g. `Int64` for `{seq}`.
public protocol PathParameterConvertible {
    /// Nil when the segment is not a valid value of this type.
    init?(pathSegment: String)
}

extension String: PathParameterConvertible {
    public init?(pathSegment: String) { self = pathSegment }
}

extension Int: PathParameterConvertible {
    public init?(pathSegment: String) { self.init(pathSegment, radix: 10) }
}

extension Int64: PathParameterConvertible {
    public init?(pathSegment: String) { self.init(pathSegment, radix: 10) }
}

extension UInt64: PathParameterConvertible {
    public init?(pathSegment: String) { self.init(pathSegment, radix: 10) }
}

/// The decoded values of a matched route's `{name}` segments.
public struct PathParameters: Sendable, Equatable {
    private var values: [String: String] = [:]

    /// No parameters.
    public init() {}

    mutating func set(_ name: String, _ value: String) {
        values[name] = value
    }

    /// The raw decoded value of `name`.
    public subscript(name: String) -> String? { values[name] }

    /// The value of `name` as `T`; a value that does not convert is a 400 naming the parameter.
    public func require<T: PathParameterConvertible>(_ name: String, as type: T.Type = T.self) throws(HTTPError) -> T {
        guard let raw = values[name], let value = T(pathSegment: raw) else {
            throw HTTPError.badRequest("Path parameter '\(name)' is not a valid \(T.self).")
        }
        return value
    }
}
