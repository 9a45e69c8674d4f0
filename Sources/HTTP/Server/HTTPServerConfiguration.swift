#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

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
    /// Serial queues that run socket I/O, one per core by default.
    public var eventLoopCount: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    /// Parser bounds.
    public var limits = HTTPParserLimits()
    /// Client timeouts.
    public var timeouts = HTTPTimeouts()
    /// A security layer (TLS) on every connection; nil serves plain HTTP.
    public var security: (any TransportSecurity)?
    /// Where each request's handler runs, asked once per request: an executor near the I/O the
    /// handlers wait on saves a thread hop per wait. nil (or a nil answer) runs handlers on the
    /// global executor.
    public var handlerExecutor: (@Sendable () -> (any TaskExecutor)?)?

    /// The defaults above.
    public init() {}
}
