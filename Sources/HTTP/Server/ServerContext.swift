import Synchronization

/// What every connection of one server shares. All stored properties are immutable or atomic.
final class ServerContext: Sendable {
    let configuration: HTTPServerConfiguration
    let responder: any HTTPResponder
    let accessLog: AccessLog?
    let metrics: HTTPMetrics?
    let openConnections = Atomic<Int>(0)
    let draining = Atomic<Bool>(false)
    private let onLastConnectionClosed: @Sendable () -> Void

    init(
        configuration: HTTPServerConfiguration,
        responder: any HTTPResponder,
        accessLog: AccessLog?,
        metrics: HTTPMetrics?,
        onLastConnectionClosed: @escaping @Sendable () -> Void
    ) {
        self.configuration = configuration
        self.responder = responder
        self.accessLog = accessLog
        self.metrics = metrics
        self.onLastConnectionClosed = onLastConnectionClosed
    }

    /// Called once per connection when its descriptor is closed.
    func connectionClosed() {
        let remaining = openConnections.subtract(1, ordering: .acquiringAndReleasing).newValue
        if remaining == 0 && draining.load(ordering: .acquiring) { onLastConnectionClosed() }
    }
}
