import HTTP

/// What a protected route handler gets: the request, and the call context its service takes.
struct APIContext: Sendable {
    let request: Request
    let call: CallContext

    var caller: Caller { call.caller }

    /// The path parameter `name`, as `T`; one that does not convert is a 400 naming it.
    func parameter<T: PathParameterConvertible>(_ name: String, as type: T.Type = String.self) throws(HTTPError) -> T {
        try request.parameters.require(name, as: type)
    }

    /// The decoded query; a malformed percent-escape is a 400.
    func query() throws(HTTPError) -> QueryParameters {
        try request.query()
    }
}
