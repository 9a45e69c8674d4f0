/// Collects routes and middleware, then freezes them into an immutable `Router`. Each area of the
/// application registers its own routes here; nothing is routed by one central switch.
public struct RouterBuilder {
    struct Entry {
        let method: HTTPMethod
        let template: PathTemplate
        let handler: RouteHandler
    }

    private var entries: [Entry] = []
    private var middleware: [any Middleware] = []
    private var errors: [RouterBuildError] = []

    /// An empty table.
    public init() {}

    /// Adds a route; `template` is like `/v1/orgs/{orgId}`.
    public mutating func on(_ method: HTTPMethod, _ template: String, use handler: @escaping RouteHandler) {
        do {
            entries.append(Entry(method: method, template: try PathTemplate(template), handler: handler))
        } catch {
            errors.append(error)
        }
    }

    /// Adds middleware around every route; the first added runs outermost.
    public mutating func add(middleware: any Middleware) {
        self.middleware.append(middleware)
    }

    /// The frozen router, or the first mistake in the table.
    public func build() throws(RouterBuildError) -> Router {
        if let error = errors.first { throw error }
        let wrapped = entries.map { entry in
            let handler = middleware.reversed().reduce(entry.handler) { next, layer in
                { request in try await layer.respond(to: request, next: next) }
            }
            return Entry(method: entry.method, template: entry.template, handler: handler)
        }
        return Router(root: try RouteNode.build(wrapped[...], depth: 0))
    }
}
