import HTTP

/// A route as registered: what the contract test and the permission test walk.
public struct RouteDescription: Sendable, Hashable {
    public let method: HTTPMethod
    public let template: String
    /// Nil for public routes (`/health`, `/ready`).
    public let action: Action?
}

/// Registers routes and remembers them, so the route table can be checked against openapi.yaml and
/// the permission matrix.
struct APIRouteBuilder {
    var router = RouterBuilder()
    private(set) var routes: [RouteDescription] = []
    let access: AccessControl

    init(access: AccessControl) {
        self.access = access
    }

    /// A route anyone may call.
    mutating func onPublic(_ method: HTTPMethod, _ template: String, use handler: @escaping RouteHandler) {
        routes.append(RouteDescription(method: method, template: template, action: nil))
        router.on(method, template, use: handler)
    }

    /// A read-only route that needs a key whose role may perform `action`, unless `isPublic`, when
    /// anyone may call it (for data that holds no PHI, such as the ledger).
    mutating func on(_ method: HTTPMethod, _ template: String, _ action: Action, publicWhen isPublic: Bool, use handler: @escaping RouteHandler) {
        guard isPublic else {
            return on(method, template, action) { context in try await handler(context.request) }
        }
        routes.append(RouteDescription(method: method, template: template, action: action))
        router.on(method, template, use: handler)
    }

    /// A route that needs a key whose role may perform `action`.
    mutating func on(_ method: HTTPMethod, _ template: String, _ action: Action, use handler: @escaping @Sendable (APIContext) async throws -> Response) {
        routes.append(RouteDescription(method: method, template: template, action: action))
        let access = self.access
        router.on(method, template) { request in
            try await access.handle(request, action, handler)
        }
    }
}
