/// The life of one connection as a pure state machine: one method per event, each returning what the
/// connection must do. Time is passed in; nothing here does I/O.
struct ConnectionStateMachine {
    enum State: Equatable {
        /// Accepted, and not one byte of a request yet. The header-read deadline applies from the
        /// accept: a socket that stays silent is closed then, not held for the keep-alive time, or
        /// a few thousand of them fill the connection limit again and again.
        case connected(since: MonotonicInstant)
        /// Kept alive with no byte of a next request yet.
        case idle(since: MonotonicInstant)
        /// Part of a request head has arrived.
        case readingHead(since: MonotonicInstant)
        /// The head is complete; the body is arriving.
        case readingBody(since: MonotonicInstant)
        /// A handler is producing the response; no client timeout applies.
        case processing(keepAlive: Bool)
        /// A response is being written.
        case writing(since: MonotonicInstant, keepAlive: Bool)
        /// The last response is out and our side is shut; unread client bytes are discarded until the
        /// client closes, so closing cannot reset the connection before the client reads the response.
        case lingering(since: MonotonicInstant)
        case closed
    }

    /// What the connection must do after an event.
    enum Action: Equatable {
        case none
        /// Read and decode the next request (pipelined bytes may already be buffered).
        case readNextRequest
        /// Shut down our side and discard input until the peer closes or the linger time ends.
        case lingerThenClose
        /// Answer 408 and close.
        case sendTimeoutAndClose
        /// Close without a response.
        case close
    }

    private(set) var state: State
    /// Set by graceful shutdown: the current response is the last one.
    private(set) var draining = false

    init(now: MonotonicInstant) {
        state = .connected(since: now)
    }

    /// Whether the connection may decode bytes now (it is not busy answering a request).
    var acceptsInput: Bool {
        switch state {
        case .connected, .idle, .readingHead, .readingBody: return true
        case .processing, .writing, .lingering, .closed: return false
        }
    }

    /// The decoder wants more bytes; `phase` says how far into a request it is.
    mutating func awaitingInput(phase: RequestDecoder.Phase, now: MonotonicInstant) {
        switch (state, phase) {
        case (.connected(let since), .head):
            // The deadline stays the accept's: a head begun late gets no fresh ten seconds.
            state = .readingHead(since: since)
        case (.idle, .head):
            state = .readingHead(since: now)
        case (.connected, .body), (.idle, .body), (.readingHead, .body):
            state = .readingBody(since: now)
        case (.connected, .betweenRequests), (.idle, .betweenRequests), (.readingHead, .head), (.readingHead, .betweenRequests),
             (.readingBody, _), (.processing, _), (.writing, _), (.lingering, _), (.closed, _):
            break
        }
    }

    /// A whole request arrived; the response keeps the connection open only if both sides agree.
    mutating func requestReceived(clientKeepAlive: Bool) {
        guard acceptsInput else { return }
        state = .processing(keepAlive: clientKeepAlive && !draining)
    }

    /// Whether the response being produced is the connection's last.
    var responseKeepsAlive: Bool {
        switch state {
        case .processing(let keepAlive), .writing(_, let keepAlive): return keepAlive && !draining
        case .connected, .idle, .readingHead, .readingBody, .lingering, .closed: return false
        }
    }

    /// The response (or an error the server produced itself) starts going out.
    mutating func writeStarted(now: MonotonicInstant, keepAlive: Bool) {
        switch state {
        case .lingering, .closed: return
        case .connected, .idle, .readingHead, .readingBody, .processing, .writing: break
        }
        state = .writing(since: now, keepAlive: keepAlive && !draining)
    }

    /// The last byte of the response left.
    mutating func writeFinished(now: MonotonicInstant) -> Action {
        guard case .writing(_, let keepAlive) = state else { return .none }
        if draining {
            // Shutting down: the response is out, and lingering would only delay the exit.
            state = .closed
            return .close
        }
        guard keepAlive else {
            state = .lingering(since: now)
            return .lingerThenClose
        }
        state = .idle(since: now)
        return .readNextRequest
    }

    /// The peer closed its side, or the socket failed.
    mutating func peerClosed() -> Action {
        switch state {
        case .processing, .writing:
            // Finish the response if we can; the write will fail by itself if the peer is gone.
            return .none
        case .connected, .idle, .readingHead, .readingBody, .lingering:
            state = .closed
            return .close
        case .closed:
            return .none
        }
    }

    /// Graceful shutdown began: idle connections close now, busy ones after their response.
    mutating func beginDrain() -> Action {
        draining = true
        switch state {
        case .connected, .idle, .readingHead, .lingering:
            state = .closed
            return .close
        case .readingBody, .processing, .writing, .closed:
            return .none
        }
    }

    /// A periodic deadline check.
    mutating func checkTimeouts(now: MonotonicInstant, timeouts: HTTPTimeouts) -> Action {
        switch state {
        case .connected(let since) where now.since(since) >= timeouts.headerRead:
            // Nothing was asked, so there is nothing to answer: closed silently.
            state = .closed
            return .close
        case .idle(let since) where now.since(since) >= timeouts.keepAliveIdle:
            state = .closed
            return .close
        case .readingHead(let since) where now.since(since) >= timeouts.headerRead:
            state = .closed
            return .sendTimeoutAndClose
        case .readingBody(let since) where now.since(since) >= timeouts.bodyRead:
            state = .closed
            return .sendTimeoutAndClose
        case .writing(let since, _) where now.since(since) >= timeouts.write:
            state = .closed
            return .close
        case .lingering(let since) where now.since(since) >= timeouts.lingeringClose:
            state = .closed
            return .close
        case .connected, .idle, .readingHead, .readingBody, .processing, .writing, .lingering, .closed:
            return .none
        }
    }

    /// The connection is being torn down for any other reason (parse error, I/O error).
    mutating func forceClose() {
        state = .closed
    }
}
