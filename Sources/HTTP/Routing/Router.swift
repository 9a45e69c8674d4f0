/// The frozen route table: matches method and path, runs the route's middleware and handler, and
/// renders any error as the JSON error shape. HEAD is answered by the GET route (RFC 9110 §9.3.2).
public struct Router: HTTPResponder {
    private let root: RouteNode

    init(root: RouteNode) {
        self.root = root
    }

    public func respond(to request: Request) async -> Response {
        var template: String?
        do {
            let (route, parameters) = try match(request)
            template = route.template.description
            var routed = request
            routed.parameters = parameters
            var response = try await route.handler(routed)
            response.routeTemplate = template
            return response
        } catch {
            var response = Response.error(error, requestId: request.requestId)
            response.routeTemplate = template
            return response
        }
    }

    private func match(_ request: Request) throws(HTTPError) -> (RouteNode.Route, PathParameters) {
        guard let segments = PathTemplate.decodedSegments(of: request.path) else {
            throw HTTPError.badRequest("Malformed percent-encoding in the path.")
        }
        var parameters = PathParameters()
        guard let node = root.find(segments[...], parameters: &parameters), !node.routes.isEmpty else {
            throw HTTPError.notFound()
        }
        if let route = node.routes[request.method] { return (route, parameters) }
        if request.method == .head, let route = node.routes[.get] { return (route, parameters) }
        var allowed = Array(node.routes.keys)
        if node.routes[.get] != nil && node.routes[.head] == nil { allowed.append(.head) }
        throw HTTPError.methodNotAllowed(allowed: allowed.sorted { $0.rawValue < $1.rawValue })
    }
}
