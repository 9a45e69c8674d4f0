import HTTP

/// The composition of every area's routes into one router.
public enum Application {
    /// Builds the router for the whole API.
    public static func makeRouter() throws -> Router {
        var builder = RouterBuilder()
        OpsRoutes.register(in: &builder)
        return try builder.build()
    }
}
