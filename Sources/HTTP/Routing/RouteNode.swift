/// One level of the immutable routing trie: literal children first, then at most one parameter child.
final class RouteNode: Sendable {
    struct Route: Sendable {
        let template: PathTemplate
        let handler: RouteHandler
    }

    let literals: [String: RouteNode]
    let parameterName: String?
    let parameterChild: RouteNode?
    let routes: [HTTPMethod: Route]

    private init(literals: [String: RouteNode], parameterName: String?, parameterChild: RouteNode?, routes: [HTTPMethod: Route]) {
        self.literals = literals
        self.parameterName = parameterName
        self.parameterChild = parameterChild
        self.routes = routes
    }

    /// Builds the node for every entry whose template has consumed `depth` segments.
    static func build(_ entries: ArraySlice<RouterBuilder.Entry>, depth: Int) throws(RouterBuildError) -> RouteNode {
        var routes: [HTTPMethod: Route] = [:]
        var literalGroups: [String: [RouterBuilder.Entry]] = [:]
        var parameterGroup: [RouterBuilder.Entry] = []
        var parameterName: String?
        for entry in entries {
            let segments = entry.template.segments
            guard depth < segments.count else {
                guard routes[entry.method] == nil else {
                    throw .duplicateRoute("\(entry.method) \(entry.template)")
                }
                routes[entry.method] = Route(template: entry.template, handler: entry.handler)
                continue
            }
            switch segments[depth] {
            case .literal(let literal):
                literalGroups[literal, default: []].append(entry)
            case .parameter(let name):
                if let parameterName, parameterName != name {
                    throw .conflictingParameterNames(entry.template.description)
                }
                parameterName = name
                parameterGroup.append(entry)
            }
        }
        var literals: [String: RouteNode] = [:]
        for (literal, group) in literalGroups {
            literals[literal] = try build(group[...], depth: depth + 1)
        }
        let parameterChild = parameterGroup.isEmpty ? nil : try build(parameterGroup[...], depth: depth + 1)
        return RouteNode(literals: literals, parameterName: parameterName, parameterChild: parameterChild, routes: routes)
    }

    /// The node for `segments`, collecting parameter values on the way; literals win over parameters.
    func find(_ segments: ArraySlice<String>, parameters: inout PathParameters) -> RouteNode? {
        guard let segment = segments.first else { return self }
        let rest = segments.dropFirst()
        if let literal = literals[segment], let found = literal.find(rest, parameters: &parameters) {
            return found
        }
        guard let parameterName, let parameterChild, !segment.isEmpty else { return nil }
        var attempt = parameters
        attempt.set(parameterName, segment)
        guard let found = parameterChild.find(rest, parameters: &attempt) else { return nil }
        parameters = attempt
        return found
    }
}
