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
    /// Open connections one client address (the socket's peer) may hold, so one address cannot
    /// starve the rest; one more is answered 503 and closed. Trusted proxies are exempt: they carry
    /// many clients' connections.
    public var maxConnectionsPerAddress: Int = 512
    /// Connections other instances of the same deployment hold open, by client address: with it,
    /// `maxConnectionsPerAddress` holds for the deployment as a whole, not for each instance.
    public var connectionsElsewhere: (any ConnectionsElsewhere)?
    /// Proxies and load balancers whose `X-Forwarded-For` (or `Forwarded`) header names the client.
    /// Requests from any other peer are attributed to the peer, whatever they claim.
    public var trustedProxies = AddressSet()
    /// The monotonic clock timeouts are measured on; tests pass a clock they move themselves.
    public var clock: @Sendable () -> MonotonicInstant = { MonotonicInstant.now() }
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

/// What other instances of one deployment report of their open connections, by client address.
/// Asked on every accepted connection, on an event loop: it answers from memory and never blocks.
public protocol ConnectionsElsewhere: Sendable {
    func openConnections(from address: String) -> Int
}
