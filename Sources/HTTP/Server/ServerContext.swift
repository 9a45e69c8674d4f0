import Synchronization

/// What every connection of one server shares. All stored properties are immutable or atomic.
final class ServerContext: Sendable {
    let configuration: HTTPServerConfiguration
    let responder: any HTTPResponder
    let accessLog: AccessLog?
    let metrics: HTTPMetrics?
    let openConnections = Atomic<Int>(0)
    let draining = Atomic<Bool>(false)
    /// Connections refused for the server's limit and for one address's.
    let refusedForServerLimit = Atomic<Int>(0)
    let refusedForAddressLimit = Atomic<Int>(0)
    /// Open connections by peer address (trusted proxies are not counted).
    private let perAddress = Mutex<[String: Int]>([:])
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

    /// The configured clock's now.
    func now() -> MonotonicInstant {
        configuration.clock()
    }

    /// Whether one more connection from `peer` fits its address's share; if so it is counted.
    func admit(peer: String) -> Bool {
        guard !configuration.trustedProxies.contains(peer) else { return true }
        let elsewhere = configuration.connectionsElsewhere?.openConnections(from: peer) ?? 0
        return perAddress.withLock { counts in
            let open = counts[peer, default: 0]
            guard open < configuration.maxConnectionsPerAddress - min(elsewhere, configuration.maxConnectionsPerAddress) else { return false }
            counts[peer] = open + 1
            return true
        }
    }

    /// An admitted connection from `peer` is gone.
    func release(peer: String) {
        guard !configuration.trustedProxies.contains(peer) else { return }
        perAddress.withLock { counts in
            let open = counts[peer, default: 0]
            if open <= 1 { counts[peer] = nil } else { counts[peer] = open - 1 }
        }
    }

    /// Open connections by client address (trusted proxies not counted).
    func openByAddress() -> [String: Int] {
        perAddress.withLock { $0 }
    }

    /// Called once per connection when its descriptor is closed.
    func connectionClosed() {
        let remaining = openConnections.subtract(1, ordering: .acquiringAndReleasing).newValue
        if remaining == 0 && draining.load(ordering: .acquiring) { onLastConnectionClosed() }
    }
}
