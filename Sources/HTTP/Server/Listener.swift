import Dispatch
import Telemetry

/// Accepts connections on the listening socket and deals them out to the event loops round-robin.
///
/// `@unchecked Sendable` is sound because `nextLoop` and `source` are only touched on `queue` (the
/// accept source's handler runs there, and `stop` hops onto it).
final class Listener: @unchecked Sendable {
    private let fd: Int32
    private let loops: [EventLoop]
    private let context: ServerContext
    private let queue = DispatchQueue(label: "careledger.http.accept")
    private var source: (any DispatchSourceRead)?
    private var nextLoop = 0

    init(fd: Int32, loops: [EventLoop], context: ServerContext) {
        self.fd = fd
        self.loops = loops
        self.context = context
    }

    func start() {
        queue.async {
            let source = DispatchSource.makeReadSource(fileDescriptor: self.fd, queue: self.queue)
            source.setEventHandler { self.acceptPending() }
            source.setCancelHandler { SocketSystem.close(self.fd) }
            self.source = source
            source.resume()
        }
    }

    /// Stops accepting; the listening socket is closed once the source is cancelled.
    func stop() {
        queue.async {
            self.source?.cancel()
            self.source = nil
        }
    }

    /// Accepts a bounded batch per event so one flood cannot starve the queue.
    private func acceptPending() {
        for _ in 0..<128 {
            guard let result = SocketSystem.accept(fd) else { return }
            guard case .success(let (client, peer)) = result else { continue }
            let open = context.openConnections.add(1, ordering: .acquiringAndReleasing).newValue
            if open > context.configuration.maxConnections {
                context.refusedForServerLimit.add(1, ordering: .relaxed)
                refuse(client)
                continue
            }
            guard context.admit(peer: peer) else {
                context.refusedForAddressLimit.add(1, ordering: .relaxed)
                refuse(client)
                continue
            }
            loops[nextLoop].adopt(client, peer: peer, context: context)
            nextLoop = (nextLoop + 1) % loops.count
        }
    }

    /// Over a connection limit: a one-shot 503 and close, so the client learns why at once.
    private func refuse(_ client: Int32) {
        let requestId = RequestID.generate()
        let bytes = ResponseEncoder.encode(.error(HTTPError.tooManyConnections, requestId: requestId), context: .init(
            requestMethod: nil, requestId: requestId, keepAlive: false, clientIsHTTP10: false,
            date: WallClock.imfFixdate(seconds: WallClock.now().seconds)))
        _ = bytes.withUnsafeBytes { SocketSystem.send(client, $0) }
        SocketSystem.close(client)
        context.connectionClosed()
    }
}
