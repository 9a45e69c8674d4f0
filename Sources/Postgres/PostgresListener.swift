import Dispatch

/// LISTENs on channels over a dedicated connection and turns notifications into an AsyncStream. When
/// the connection breaks it reconnects and LISTENs again, then yields `.reconnected`: notifications
/// sent while it was away are lost, so consumers must re-check whatever they were waiting for.
///
/// `@unchecked Sendable` is sound because all mutable state (`connection`, `source`, `subscribers`,
/// `stopped`) is touched only on `queue`; the public methods hop onto it.
public final class PostgresListener: @unchecked Sendable {
    /// What subscribers receive.
    public enum Event: Sendable, Equatable {
        case notification(channel: String, payload: String)
        /// The listener (re)connected; anything may have been missed.
        case reconnected
    }

    private let conninfo: String
    private let channels: [String]
    private let reconnectDelay: Duration
    private let livenessInterval: Duration
    private var livenessTimer: (any DispatchSourceTimer)?
    private let queue = DispatchQueue(label: "careledger.postgres.listen")
    private var connection: PostgresConnection?
    private var source: (any DispatchSourceRead)?
    private var subscribers: [Int: AsyncStream<Event>.Continuation] = [:]
    private var nextSubscriber = 0
    private var stopped = false

    /// A listener for `channels` (lower-case identifiers: letters, digits, underscores). Every
    /// `livenessInterval` it runs a trivial query, so a connection that died silently is noticed.
    public init(
        conninfo: String, channels: [String], reconnectDelay: Duration = .milliseconds(500),
        livenessInterval: Duration = .seconds(5)
    ) throws(PostgresError) {
        guard channels.allSatisfy(Self.isValidChannel) else {
            throw PostgresError(.client, message: "channel names must be lower-case identifiers")
        }
        self.conninfo = conninfo
        self.channels = channels
        self.reconnectDelay = reconnectDelay
        self.livenessInterval = livenessInterval
    }

    static func isValidChannel(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 63 && name.utf8.allSatisfy {
            ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                || $0 == UInt8(ascii: "_")
        }
    }

    /// Starts connecting in the background.
    public func start() {
        queue.async { self.connect() }
    }

    /// Stops listening and finishes every stream.
    public func stop() {
        queue.async {
            self.stopped = true
            self.disconnect()
            self.subscribers.values.forEach { $0.finish() }
            self.subscribers = [:]
        }
    }

    /// A stream of events from now on.
    public func events() -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(1024))
        queue.async {
            guard !self.stopped else { return continuation.finish() }
            let id = self.nextSubscriber
            self.nextSubscriber += 1
            self.subscribers[id] = continuation
            continuation.onTermination = { _ in self.queue.async { self.subscribers[id] = nil } }
            if self.connection != nil { continuation.yield(.reconnected) }
        }
        return stream
    }

    private func connect() {
        guard !stopped else { return }
        do {
            let connection = try PostgresConnection.connectBlocking(conninfo, connectTimeout: .seconds(2))
            for channel in channels {
                // Channel names were validated as plain identifiers in init; LISTEN takes no binds.
                try connection.executeScript("LISTEN " + channel)
            }
            try connection.makeNonBlocking()
            let source = DispatchSource.makeReadSource(fileDescriptor: connection.socket, queue: queue)
            source.setEventHandler { self.readable() }
            // Dispatch needs the descriptor open until cancellation completes; the connection closes
            // it in deinit, so the cancel handler holds the last reference.
            source.setCancelHandler { withExtendedLifetime(connection) {} }
            source.resume()
            self.connection = connection
            self.source = source
            startLivenessTimer()
            broadcast(.reconnected)
        } catch {
            scheduleReconnect()
        }
    }

    private func readable() {
        guard let connection else { return }
        do {
            for (channel, payload) in try connection.consumeNotifications() {
                broadcast(.notification(channel: channel, payload: payload))
            }
        } catch {
            disconnect()
            scheduleReconnect()
        }
    }

    private func startLivenessTimer() {
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + livenessInterval.dispatchInterval, repeating: livenessInterval.dispatchInterval)
        timer.setEventHandler { self.checkLiveness() }
        timer.resume()
        livenessTimer = timer
    }

    private func checkLiveness() {
        guard let connection else { return }
        do {
            try connection.executeScript("SELECT 1")
            readable()
        } catch {
            disconnect()
            scheduleReconnect()
        }
    }

    private func disconnect() {
        livenessTimer?.cancel()
        livenessTimer = nil
        source?.cancel()
        source = nil
        connection = nil
    }

    private func scheduleReconnect() {
        guard !stopped else { return }
        queue.asyncAfter(deadline: .now() + reconnectDelay.dispatchInterval) { self.connect() }
    }

    private func broadcast(_ event: Event) {
        for continuation in subscribers.values { continuation.yield(event) }
    }
}
