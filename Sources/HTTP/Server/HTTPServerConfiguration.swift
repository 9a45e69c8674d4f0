#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import IOLoop

/// Everything the server needs to know to listen and to protect itself.
public struct HTTPServerConfiguration: Sendable {
    /// Address to bind: an IPv4 or IPv6 literal or a host name; `::` listens on both families.
    public var host: String = "127.0.0.1"
    /// TCP port; 0 picks a free one (tests).
    public var port: Int = 8080
    /// Kernel accept queue length.
    public var backlog: Int32 = 1024
    /// Open connections at most; one more is answered 503 and closed at once.
    public var maxConnections: Int = 4096
    /// Connection groups, spread over the process's event loops (`IOEventLoop.all`, one per core).
    public var eventLoopCount: Int = IOEventLoop.all.count
    /// Parser bounds.
    public var limits = HTTPParserLimits()
    /// Client timeouts.
    public var timeouts = HTTPTimeouts()
    /// A security layer (TLS) on every connection; nil serves plain HTTP.
    public var security: (any TransportSecurity)?
    /// Runs each request's handler on the event loop that read the request (a task preferring it),
    /// instead of the global executor: no thread hop per request, and none per database wait when the
    /// database driver watches its sockets on the same loops. Handlers must then never block.
    public var handlersRunOnEventLoops = false

    /// The defaults above.
    public init() {}
}
