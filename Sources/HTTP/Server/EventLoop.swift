import Dispatch

/// One serial queue that owns a share of the connections: their socket events, their timeouts and the
/// read buffer they share.
///
/// `@unchecked Sendable` is sound because every mutable property (`connections`, `timer`, the contents
/// of `readBuffer`) is only read or written by code running on `queue`: the entry points below hop
/// onto it with `queue.async` before touching anything, and connections read into `readBuffer` only
/// from their read-source handlers, which run on `queue`.
final class EventLoop: @unchecked Sendable {
    let queue: DispatchQueue
    let readBuffer: UnsafeMutableRawBufferPointer
    private var connections: [ObjectIdentifier: Connection] = [:]
    private var timer: (any DispatchSourceTimer)?

    init(index: Int) {
        queue = DispatchQueue(label: "careledger.http.loop-\(index)")
        readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
    }

    deinit {
        readBuffer.deallocate()
    }

    /// Takes ownership of an accepted socket.
    func adopt(_ fd: Int32, peer: String, context: ServerContext) {
        queue.async {
            let connection = Connection(fd: fd, peer: peer, loop: self, context: context)
            self.connections[ObjectIdentifier(connection)] = connection
            connection.start()
        }
    }

    /// Forgets a closed connection; called on `queue`.
    func remove(_ connection: Connection) {
        connections[ObjectIdentifier(connection)] = nil
    }

    /// Starts the periodic deadline check.
    func startTimer(interval: Duration, timeouts: HTTPTimeouts) {
        queue.async {
            let timer = DispatchSource.makeTimerSource(queue: self.queue)
            let nanos = Int(interval.nanoseconds)
            timer.schedule(deadline: .now() + .nanoseconds(nanos), repeating: .nanoseconds(nanos), leeway: .nanoseconds(nanos / 4))
            timer.setEventHandler {
                let now = MonotonicInstant.now()
                for connection in self.connections.values { connection.checkTimeouts(now: now, timeouts: timeouts) }
            }
            timer.resume()
            self.timer = timer
        }
    }

    /// Stops the deadline check.
    func stopTimer() {
        queue.async {
            self.timer?.cancel()
            self.timer = nil
        }
    }

    /// Graceful shutdown: idle connections close, busy ones close after their response.
    func drainConnections() {
        queue.async {
            for connection in self.connections.values { connection.drain() }
        }
    }

    /// End of the drain period: whatever is still open is closed.
    func closeAllConnections() {
        queue.async {
            for connection in self.connections.values { connection.close() }
        }
    }
}
