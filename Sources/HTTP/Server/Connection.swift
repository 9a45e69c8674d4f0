#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import IOLoop
import Synchronization

/// One client connection: socket events in, decoded requests out to the responder, responses back, in
/// strict request order (one request at a time; pipelined bytes wait in the buffer, and reading pauses
/// once more than `pipelineBufferLimit` bytes wait, so the kernel's window bounds the rest).
///
/// Socket events and timeouts arrive on the event loop's thread; a handler's response is written by
/// the task that produced it (a non-blocking send). With `handlersRunOnEventLoops` the handler runs
/// on that same thread, so reading, handling and answering a request need no thread hop.
///
/// `@unchecked Sendable` is sound because every mutable property is read and written only while
/// holding `lock`: each entry point (`start`, `socketReady`, `respond`, `checkTimeouts`, `drain`,
/// `close`) takes it, and everything else is called from inside one.
final class Connection: IOWatcher, @unchecked Sendable {
    /// What the access log needs about the request being answered.
    private struct InFlight {
        let requestId: String
        let method: HTTPMethod?
        let clientIsHTTP10: Bool
        let started: MonotonicInstant
    }

    private let lock = Mutex<Void>(())
    private let fd: Int32
    private let peer: String
    /// The security layer (TLS) on the socket, when the server has one.
    private let transport: (any ConnectionTransport)?
    private let refused: Bool
    private let loop: EventLoop
    private let context: ServerContext
    private var machine: ConnectionStateMachine
    private var decoder: RequestDecoder
    /// The socket's registration with the event loop, while open.
    private var registration: UInt64?
    private var readSuspended = false
    private var writeArmed = false
    private var isClosed = false
    private var inputClosed = false
    private var input: [UInt8] = []
    private var inputStart = 0
    private var output: [UInt8] = []
    private var outputOffset = 0
    private static let pipelineBufferLimit = 64 * 1024

    init(fd: Int32, peer: String, loop: EventLoop, context: ServerContext) {
        self.fd = fd
        self.peer = peer
        self.loop = loop
        self.context = context
        machine = ConnectionStateMachine(now: context.now())
        decoder = RequestDecoder(limits: context.configuration.limits)
        if let security = context.configuration.security {
            transport = security.transport(for: fd)
            refused = transport == nil
        } else {
            transport = nil
            refused = false
        }
    }

    func start() {
        lock.withLock { _ in startLocked() }
    }

    private func startLocked() {
        registration = loop.ioLoop.register(fd, self, readable: true, writable: false)
        // A connection accepted just as shutdown began is closed rather than left undrained.
        if registration == nil || context.draining.load(ordering: .acquiring) || refused { closeLocked() }
    }

    func socketReady(readable: Bool, writable: Bool) {
        lock.withLock { _ in
            if writable, writeArmed { flush() }
            guard readable, !isClosed else { return }
            guard readSuspended else { return self.readable() }
            // Reading is paused, so this is a hang-up or an error, which epoll reports regardless
            // (and keeps reporting). After the client's EOF it means the connection is dead; before
            // it, a read finds out which.
            if inputClosed { closeLocked() } else { self.readable() }
        }
    }

    // MARK: Reading

    private func readable() {
        guard !isClosed else { return }
        switch transport?.read(into: loop.readBuffer) ?? SocketSystem.read(fd, into: loop.readBuffer) {
        case .transferred(let count):
            if case .lingering = machine.state { return }
            input.append(contentsOf: UnsafeRawBufferPointer(rebasing: loop.readBuffer[0..<count]))
            if machine.acceptsInput {
                process()
            } else if input.count - inputStart > Self.pipelineBufferLimit {
                // Reading stays on while a request is handled (pausing costs system calls per
                // request); only a client that keeps pipelining is made to wait.
                suspendReading()
            }
            // Decrypted bytes the layer still holds get no socket event of their own.
            if let transport, transport.hasBufferedInput, !isClosed, !readSuspended {
                loop.ioLoop.execute { self.lock.withLock { _ in self.readable() } }
            }
        case .wouldBlock:
            return
        case .endOfFile:
            inputClosed = true
            suspendReading()
            if machine.peerClosed() == .close { closeLocked() }
        case .failed:
            closeLocked()
        }
    }

    /// Decodes buffered bytes while the connection is free to take a request.
    private func process() {
        while machine.acceptsInput && !isClosed {
            let (consumed, event) = input.withUnsafeBytes { raw in
                decoder.decode(UnsafeRawBufferPointer(rebasing: raw[inputStart...]))
            }
            inputStart += consumed
            switch event {
            case .needMore:
                compactInput()
                if inputClosed { return closeLocked() }
                machine.awaitingInput(phase: decoder.phase, now: context.now())
                resumeReading()
                return
            case .continueExpected:
                output.append(contentsOf: ResponseEncoder.continueResponse)
                flush()
            case .request(let head, let body):
                return dispatch(head, body: body)
            case .failed(let error):
                return respondAndClose(HTTPError(error), method: nil)
            }
        }
    }

    private func compactInput() {
        if inputStart == input.count {
            input.removeAll(keepingCapacity: input.capacity <= 128 * 1024)
            inputStart = 0
        } else if inputStart > 16 * 1024 {
            input.removeFirst(inputStart)
            inputStart = 0
        }
    }

    // MARK: Handling

    private func dispatch(_ head: RequestHead, body: [UInt8]) {
        machine.requestReceived(clientKeepAlive: head.wantsKeepAlive)
        let requestId = RequestID.accepting(head.headers.first(name: "X-Request-Id")) ?? RequestID.generate()
        let client = ClientAddress.resolve(peer: peer, headers: head.headers, trusted: context.configuration.trustedProxies)
        let request = Request(head: head, body: body, requestId: requestId, clientAddress: client, peerAddress: peer,
                              clientCertificateSHA256: transport?.peerCertificateSHA256)
        let inFlight = InFlight(
            requestId: requestId, method: head.method, clientIsHTTP10: head.version == .http1_0, started: context.now())
        let responder = context.responder
        Task(executorPreference: context.configuration.handlersRunOnEventLoops ? loop.ioLoop : nil) {
            let response = await responder.respond(to: request)
            self.respond(response, to: inFlight)
        }
    }

    private func respond(_ response: Response, to inFlight: InFlight) {
        lock.withLock { _ in
            guard !isClosed else { return }
            send(response, to: inFlight, keepAlive: machine.responseKeepsAlive)
        }
    }

    /// Answers a request the server refuses itself, then closes.
    private func respondAndClose(_ error: HTTPError, method: HTTPMethod?) {
        let requestId = RequestID.generate()
        let inFlight = InFlight(requestId: requestId, method: method, clientIsHTTP10: false, started: context.now())
        send(.error(error, requestId: requestId), to: inFlight, keepAlive: false)
    }

    private func send(_ response: Response, to inFlight: InFlight, keepAlive: Bool) {
        let bytes = ResponseEncoder.encode(response, context: ResponseEncoder.Context(
            requestMethod: inFlight.method, requestId: inFlight.requestId, keepAlive: keepAlive,
            clientIsHTTP10: inFlight.clientIsHTTP10, date: DateCache.shared.current()))
        let now = context.now()
        let duration = now.since(inFlight.started)
        context.accessLog?.record(AccessLog.Entry(
            requestId: inFlight.requestId, method: inFlight.method, route: response.routeTemplate,
            status: response.status.code, duration: duration, bytes: bytes.count))
        context.metrics?.record(route: response.routeTemplate, method: inFlight.method, status: response.status.code, duration: duration)
        machine.writeStarted(now: now, keepAlive: keepAlive)
        output.append(contentsOf: bytes)
        flush()
    }

    // MARK: Writing

    private func flush() {
        while outputOffset < output.count {
            let result = output.withUnsafeBytes { raw in
                let pending = UnsafeRawBufferPointer(rebasing: raw[outputOffset...])
                return transport?.write(pending) ?? SocketSystem.send(fd, pending)
            }
            switch result {
            case .transferred(let count):
                outputOffset += count
            case .wouldBlock:
                return watch(readable: !readSuspended, writable: true)
            case .endOfFile, .failed:
                return closeLocked()
            }
        }
        output.removeAll(keepingCapacity: output.capacity <= 128 * 1024)
        outputOffset = 0
        if writeArmed { watch(readable: !readSuspended, writable: false) }
        guard case .writing = machine.state else { return }
        switch machine.writeFinished(now: context.now()) {
        case .readNextRequest:
            process()
        case .lingerThenClose:
            lingerThenClose()
        case .close, .sendTimeoutAndClose:
            closeLocked()
        case .none:
            break
        }
    }

    /// RFC 9112 §9.6: half-close, then read and discard until the client closes too.
    private func lingerThenClose() {
        if inputClosed { return closeLocked() }
        transport?.shutdown()
        SocketSystem.shutdownWrite(fd)
        input = []
        inputStart = 0
        resumeReading()
    }

    /// Tells the loop which readiness to report; a failure means the socket is gone.
    private func watch(readable: Bool, writable: Bool) {
        guard let registration else { return }
        readSuspended = !readable
        writeArmed = writable
        guard loop.ioLoop.modify(fd, token: registration, readable: readable, writable: writable) else { return closeLocked() }
    }

    // MARK: Timeouts, shutdown, teardown

    func checkTimeouts(now: MonotonicInstant, timeouts: HTTPTimeouts) {
        lock.withLock { _ in checkTimeoutsLocked(now: now, timeouts: timeouts) }
    }

    private func checkTimeoutsLocked(now: MonotonicInstant, timeouts: HTTPTimeouts) {
        switch machine.checkTimeouts(now: now, timeouts: timeouts) {
        case .sendTimeoutAndClose:
            sendFinalBestEffort(.error(HTTPError.requestTimeout, requestId: RequestID.generate()))
            closeLocked()
        case .close:
            closeLocked()
        case .none, .readNextRequest, .lingerThenClose:
            break
        }
    }

    /// One non-blocking attempt to send a last response on a connection that is closing anyway.
    private func sendFinalBestEffort(_ response: Response) {
        let requestId = RequestID.generate()
        let inFlight = InFlight(requestId: requestId, method: nil, clientIsHTTP10: false, started: context.now())
        let bytes = ResponseEncoder.encode(response, context: ResponseEncoder.Context(
            requestMethod: nil, requestId: requestId, keepAlive: false, clientIsHTTP10: false,
            date: DateCache.shared.current()))
        context.accessLog?.record(AccessLog.Entry(
            requestId: inFlight.requestId, method: nil, route: nil, status: response.status.code,
            duration: .zero, bytes: bytes.count))
        _ = bytes.withUnsafeBytes { transport?.write($0) ?? SocketSystem.send(fd, $0) }
    }

    /// Where the connection is in its life (for tests that move the clock).
    var state: ConnectionStateMachine.State {
        lock.withLock { _ in machine.state }
    }

    func drain() {
        lock.withLock { _ in
            if machine.beginDrain() == .close { closeLocked() }
        }
    }

    func close() {
        lock.withLock { _ in closeLocked() }
    }

    private func closeLocked() {
        guard !isClosed else { return }
        isClosed = true
        machine.forceClose()
        transport?.shutdown()
        // Unregistered before the close: the descriptor's number may be reused at once, and a stale
        // event for it must not reach this connection (registrations are keyed by token, not number).
        if let registration { loop.ioLoop.unregister(fd, token: registration) }
        registration = nil
        SocketSystem.close(fd)
        context.release(peer: peer)
        context.connectionClosed()
        let loop = self.loop
        loop.ioLoop.execute { loop.remove(self) }
    }

    private func suspendReading() {
        guard !readSuspended else { return }
        watch(readable: false, writable: writeArmed)
    }

    private func resumeReading() {
        guard readSuspended else { return }
        watch(readable: true, writable: writeArmed)
    }
}
