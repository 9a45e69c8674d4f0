/// A route path such as `/v1/orgs/{orgId}/keys`, split into literal and parameter segments.
struct PathTemplate: Sendable, Equatable, CustomStringConvertible {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    let segments: [Segment]
    let description: String

    /// Parses a template; it must start with `/`, and each `{name}` must fill a whole segment.
    init(_ template: String) throws(RouterBuildError) {
        guard template.hasPrefix("/") else { throw .invalidTemplate(template) }
        var segments: [Segment] = []
        for part in template.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count > 2 {
                segments.append(.parameter(String(part.dropFirst().dropLast())))
            } else if part.contains("{") || part.contains("}") {
                throw .invalidTemplate(template)
            } else {
                segments.append(.literal(String(part)))
            }
        }
        self.segments = segments
        self.description = template
    }

    /// The segments of a request path, percent-decoded one by one so an encoded `/` stays inside its
    /// segment; nil when an escape is malformed.
    static func decodedSegments(of path: String) -> [String]? {
        var decoded: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            guard let segment = PercentDecoding.decode(part, plusAsSpace: false) else { return nil }
            decoded.append(segment)
        }
        return decoded
    }
}

/// A route table that cannot be built as written; a programming error found at start-up.
public enum RouterBuildError: Error, Equatable, CustomStringConvertible {
    case invalidTemplate(String)
    case duplicateRoute(String)
    case conflictingParameterNames(String)

    public var description: String {
        switch self {
        case .invalidTemplate(let template): return "invalid route template \(template)"
        case .duplicateRoute(let route): return "route registered twice: \(route)"
        case .conflictingParameterNames(let template): return "parameter names disagree at \(template)"
        }
    }
}
