import Dispatch
import IOLoop
import Synchronization

/// A share of the connections, served by one `IOEventLoop` thread: their socket events, their
/// timeouts and the read buffer they share.
///
/// `@unchecked Sendable` is sound because every mutable property (`connections`, the contents of
/// `readBuffer`; `timer` is only touched under `timerLock`) is only read or written on `ioLoop`'s thread: the entry points below hop onto it with
/// `ioLoop.execute` before touching anything, and connections read into `readBuffer` only from their
/// socket events, which that thread delivers.
final class EventLoop: @unchecked Sendable {
    let ioLoop: IOEventLoop
    let readBuffer: UnsafeMutableRawBufferPointer
    private var connections: [ObjectIdentifier: Connection] = [:]
    /// Fires the deadline checks; it only hops onto the loop, so any queue will do.
    private let timerQueue: DispatchQueue
    private let timerLock = Mutex<Void>(())
    private var timer: (any DispatchSourceTimer)?

    init(index: Int) {
        ioLoop = IOEventLoop.all[index % IOEventLoop.all.count]
        readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        timerQueue = DispatchQueue(label: "careledger.http.timer-\(index)")
    }

    deinit {
        readBuffer.deallocate()
    }

    /// Takes ownership of an accepted socket.
    func adopt(_ fd: Int32, peer: String, context: ServerContext) {
        ioLoop.execute {
            let connection = Connection(fd: fd, peer: peer, loop: self, context: context)
            self.connections[ObjectIdentifier(connection)] = connection
            connection.start()
        }
    }

    /// Forgets a closed connection; called on the loop's thread.
    func remove(_ connection: Connection) {
        connections[ObjectIdentifier(connection)] = nil
    }

    /// Starts the periodic deadline check.
    func startTimer(interval: Duration, timeouts: HTTPTimeouts, clock: @escaping @Sendable () -> MonotonicInstant) {
        let nanos = Int(interval.nanoseconds)
        let source = DispatchSource.makeTimerSource(queue: timerQueue)
        source.schedule(deadline: .now() + .nanoseconds(nanos), repeating: .nanoseconds(nanos), leeway: .nanoseconds(nanos / 4))
        source.setEventHandler { self.checkTimeouts(timeouts: timeouts, clock: clock) {} }
        source.resume()
        timerLock.withLock { _ in timer = source }
    }

    /// One deadline check of every connection, on the loop's thread; `done` runs after it.
    func checkTimeouts(timeouts: HTTPTimeouts, clock: @escaping @Sendable () -> MonotonicInstant, done: @escaping @Sendable () -> Void) {
        ioLoop.execute {
            let now = clock()
            for connection in self.connections.values { connection.checkTimeouts(now: now, timeouts: timeouts) }
            done()
        }
    }

    /// The states of this loop's connections, read on its thread.
    func connectionStates(_ done: @escaping @Sendable ([ConnectionStateMachine.State]) -> Void) {
        ioLoop.execute { done(self.connections.values.map(\.state)) }
    }

    /// Stops the deadline check.
    func stopTimer() {
        timerLock.withLock { _ in
            timer?.cancel()
            timer = nil
        }
    }

    /// Graceful shutdown: idle connections close, busy ones close after their response.
    func drainConnections() {
        ioLoop.execute {
            for connection in self.connections.values { connection.drain() }
        }
    }

    /// End of the drain period: whatever is still open is closed.
    func closeAllConnections() {
        ioLoop.execute {
            for connection in self.connections.values { connection.close() }
        }
    }
}
