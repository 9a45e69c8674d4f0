import Dispatch
import Synchronization

/// An HTTP/1.1 server over non-blocking sockets. Socket I/O runs on the process's event loops
/// (`IOEventLoop`, one per core); request handlers run as tasks, on the loop that read the request
/// when `handlersRunOnEventLoops` is set (they must then never block), else on the global executor.
public final class HTTPServer: Sendable {
    private enum Phase {
        case created
        case running(Listener)
        case draining
        case stopped
    }

    private struct State {
        var phase: Phase = .created
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let configuration: HTTPServerConfiguration
    private let loops: [EventLoop]
    private let state = Mutex(State())
    private let contextBox = Mutex<ServerContext?>(nil)
    private let responder: any HTTPResponder
    private let accessLog: AccessLog?
    private let metrics: HTTPMetrics?

    /// A server that will answer every request with `responder`, log each one to `accessLog` and
    /// count it in `metrics`.
    public init(configuration: HTTPServerConfiguration, responder: any HTTPResponder, accessLog: AccessLog?, metrics: HTTPMetrics? = nil) {
        self.configuration = configuration
        self.responder = responder
        self.accessLog = accessLog
        self.metrics = metrics
        loops = (0..<max(1, configuration.eventLoopCount)).map(EventLoop.init(index:))
    }

    /// Binds and starts accepting; returns the bound port (useful when the configured port is 0).
    @discardableResult
    public func start() throws(SocketError) -> Int {
        let (fd, port) = try SocketSystem.listen(
            host: configuration.host, port: configuration.port, backlog: configuration.backlog)
        let context = ServerContext(
            configuration: configuration, responder: responder, accessLog: accessLog, metrics: metrics,
            onLastConnectionClosed: { [weak self] in self?.finish() })
        contextBox.withLock { $0 = context }
        metrics?.observeConnections { [weak context] in
            guard let context else { return ConnectionCounts() }
            return ConnectionCounts(open: context.openConnections.load(ordering: .relaxed),
                                    refusedForServerLimit: context.refusedForServerLimit.load(ordering: .relaxed),
                                    refusedForAddressLimit: context.refusedForAddressLimit.load(ordering: .relaxed))
        }
        let listener = Listener(fd: fd, loops: loops, context: context)
        state.withLock { $0.phase = .running(listener) }
        for loop in loops { loop.startTimer(interval: configuration.timeouts.checkInterval, timeouts: configuration.timeouts, clock: configuration.clock) }
        listener.start()
        return port
    }

    /// Open connections by client address, as the per-address limit counts them (empty before `start()`).
    public func openConnectionsByAddress() -> [String: Int] {
        contextBox.withLock { $0 }?.openByAddress() ?? [:]
    }

    /// Checks every connection's deadlines now, on the configured clock, and returns once done (the
    /// periodic check does the same every `checkInterval`; tests that move their clock call this).
    public func checkTimeouts() async {
        let (timeouts, clock) = (configuration.timeouts, configuration.clock)
        for loop in loops {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                loop.checkTimeouts(timeouts: timeouts, clock: clock) { continuation.resume() }
            }
        }
    }

    /// Every open connection's state (tests wait for one before moving their clock).
    func connectionStates() async -> [ConnectionStateMachine.State] {
        var states: [ConnectionStateMachine.State] = []
        for loop in loops {
            states += await withCheckedContinuation { continuation in loop.connectionStates { continuation.resume(returning: $0) } }
        }
        return states
    }

    /// Connections currently open.
    public var openConnections: Int {
        contextBox.withLock { $0?.openConnections.load(ordering: .relaxed) ?? 0 }
    }

    /// Graceful shutdown: stop accepting, let in-flight requests finish (their responses carry
    /// `Connection: close`), close idle connections, and force-close the rest after the drain timeout.
    public func shutdown() {
        let listener: Listener? = state.withLock { state in
            guard case .running(let listener) = state.phase else { return nil }
            state.phase = .draining
            return listener
        }
        guard let listener, let context = contextBox.withLock({ $0 }) else { return }
        context.draining.store(true, ordering: .releasing)
        listener.stop()
        for loop in loops { loop.drainConnections() }
        let drain = configuration.timeouts.drain
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(drain.nanoseconds))) { [weak self] in
            guard let self else { return }
            for loop in self.loops { loop.closeAllConnections() }
            // Closing completes asynchronously; give the loops one pass before declaring the end.
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(50)) { self.finish() }
        }
        if context.openConnections.load(ordering: .acquiring) == 0 { finish() }
    }

    /// Returns once shutdown has completed (or at once if the server already stopped).
    public func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let stopped = state.withLock { state -> Bool in
                if case .stopped = state.phase { return true }
                state.waiters.append(continuation)
                return false
            }
            if stopped { continuation.resume() }
        }
    }

    private func finish() {
        let waiters: [CheckedContinuation<Void, Never>]? = state.withLock { state in
            guard case .draining = state.phase else { return nil }
            state.phase = .stopped
            defer { state.waiters = [] }
            return state.waiters
        }
        guard let waiters else { return }
        for loop in loops { loop.stopTimer() }
        accessLog?.flush()
        for waiter in waiters { waiter.resume() }
    }
}
