/// The four timeouts that keep slow or idle clients from holding a connection forever.
public struct HTTPTimeouts: Sendable, Equatable {
    /// From the first byte of a request to the end of its header section. Over it: 408 and close.
    /// Bounding the whole head, not the gap between bytes, is what defeats slowloris.
    public var headerRead: Duration = .seconds(10)
    /// From the end of the head to the end of the body. Over it: 408 and close.
    public var bodyRead: Duration = .seconds(30)
    /// How long a kept-alive connection may sit with no request. Over it: closed silently.
    public var keepAliveIdle: Duration = .seconds(60)
    /// How long a response may take to drain into a client that does not read. Over it: closed.
    public var write: Duration = .seconds(30)
    /// How long a closing connection keeps discarding client bytes after its last response, so that
    /// an early answer (413, 400) is not destroyed by a TCP reset (RFC 9112 §9.6).
    public var lingeringClose: Duration = .seconds(2)
    /// How long graceful shutdown waits for in-flight requests before closing what is left.
    public var drain: Duration = .seconds(10)

    /// The defaults above.
    public init() {}

    /// How often the event loops check deadlines: a quarter of the shortest timeout, within 10 ms...1 s.
    var checkInterval: Duration {
        let shortest = [headerRead, bodyRead, keepAliveIdle, write, lingeringClose].min() ?? .seconds(1)
        return min(max(shortest / 4, .milliseconds(10)), .seconds(1))
    }
}
