/// A route handler: the request in, a response out; a thrown error is rendered by the router.
public typealias RouteHandler = @Sendable (Request) async throws -> Response

/// Code that runs around every matched route (authentication, auditing, ...), outermost first.
public protocol Middleware: Sendable {
    /// Handles the request, usually by calling `next` and inspecting or adjusting its answer.
    func respond(to request: Request, next: RouteHandler) async throws -> Response
}

/// What the server calls for every request it has parsed. It always produces a response.
public protocol HTTPResponder: Sendable {
    /// Produces the response to `request`; never throws, errors are rendered as responses.
    func respond(to request: Request) async -> Response
}
