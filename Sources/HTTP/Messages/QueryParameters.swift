/// Decoded `name=value` pairs of a query string, in order, repeats kept.
public struct QueryParameters: Sendable, Equatable {
    /// The pairs, decoded.
    public private(set) var pairs: [(name: String, value: String)] = []

    /// Parses `a=1&b=2`; `+` is a space; a malformed escape is a 400 naming no value.
    public init(parsing query: String) throws(HTTPError) {
        for component in query.split(separator: "&", omittingEmptySubsequences: true) {
            let nameEnd = component.firstIndex(of: "=") ?? component.endIndex
            let rawValue = nameEnd == component.endIndex ? "" : component[component.index(after: nameEnd)...]
            guard let name = PercentDecoding.decode(component[..<nameEnd], plusAsSpace: true),
                  let value = PercentDecoding.decode(rawValue, plusAsSpace: true)
            else { throw HTTPError.badRequest("Malformed percent-encoding in the query string.") }
            pairs.append((name, value))
        }
    }

    /// The first value of `name`.
    public subscript(name: String) -> String? {
        pairs.first { $0.name == name }?.value
    }

    /// Every value of `name`, in order.
    public func all(_ name: String) -> [String] {
        pairs.filter { $0.name == name }.map(\.value)
    }

    public static func == (lhs: QueryParameters, rhs: QueryParameters) -> Bool {
        lhs.pairs.elementsEqual(rhs.pairs) { $0.name == $1.name && $0.value == $1.value }
    }
}
