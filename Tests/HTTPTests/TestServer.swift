@testable import HTTP
import TestSupport
import Synchronization
import Telemetry

/// A log sink that keeps lines in memory for assertions.
final class CapturingLogSink: LogSink {
    private let lines = Mutex<[String]>([])

    func write(_ line: String) { lines.withLock { $0.append(line) } }
    func flush() {}

    var captured: [String] { lines.withLock { $0 } }
}

/// A monotonic clock that moves only when the test moves it: timeouts are tested without waiting.
final class ManualClock: Sendable {
    private let instant = Mutex(MonotonicInstant(nanoseconds: 1_000_000_000_000))

    func now() -> MonotonicInstant { instant.withLock { $0 } }

    func advance(by duration: Duration) {
        instant.withLock { $0 = $0.advanced(by: duration) }
    }
}

/// Holds the `/slow` handler until the test opens it, and says when a handler is waiting there.
final class Gate: Sendable {
    private struct State {
        var open = false
        var waiting = 0
        var continuations: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    var waiting: Int { state.withLock { $0.waiting } }

    func pass() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                guard !state.open else { return true }
                state.waiting += 1
                state.continuations.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func open() {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.continuations = [] }
            return state.continuations
        }
        for continuation in waiting { continuation.resume() }
    }
}

/// A server on an ephemeral loopback port with a small route table for socket-level tests.
struct TestServer {
    let server: HTTPServer
    let port: Int
    let log: CapturingLogSink
    /// The clock its timeouts run on.
    let clock: ManualClock
    /// What `/slow` waits for.
    let gate: Gate

    /// Timeouts are the defaults on a manual clock (move it, then `checkTimeouts`), and the drain
    /// is short; limits are the defaults unless changed.
    static func start(_ configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws -> TestServer {
        let clock = ManualClock()
        let gate = Gate()
        var configuration = HTTPServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.eventLoopCount = 2
        configuration.timeouts.drain = .seconds(1)
        configuration.clock = { clock.now() }
        configure(&configuration)
        let log = CapturingLogSink()
        let server = HTTPServer(configuration: configuration, responder: try makeRouter(gate: gate), accessLog: AccessLog(sink: log))
        let port = try server.start()
        return TestServer(server: server, port: port, log: log, clock: clock, gate: gate)
    }

    /// Returns once some connection is in a state `matching` says (the server reads and reacts on
    /// its own threads; a test moving the clock must wait for that first).
    func waitForConnection(_ what: String, _ matching: @escaping (ConnectionStateMachine.State) -> Bool) async throws {
        try await waitUntil("a connection \(what)") { await server.connectionStates().contains(where: matching) }
    }

    /// Moves the clock and runs the deadline checks at once.
    func advance(by duration: Duration) async {
        clock.advance(by: duration)
        await server.checkTimeouts()
    }

    func connect(receiveTimeout: Duration = .seconds(5)) async throws -> TestClient {
        try await TestClient.connect(port: port, receiveTimeout: receiveTimeout)
    }

    func stop() async {
        server.shutdown()
        await server.waitUntilStopped()
    }

    static func makeRouter(gate: Gate = Gate()) throws -> Router {
        var router = RouterBuilder()
        router.on(.get, "/health") { _ in .json(.ok, Array(#"{"status":"ok"}"#.utf8)) }
        router.on(.post, "/echo") { request in Response(status: .ok, body: request.body) }
        router.on(.get, "/slow") { _ in
            await gate.pass()
            return Response(status: .ok, body: Array("slow".utf8))
        }
        router.on(.get, "/whoami") { request in
            Response(status: .ok, body: Array("\(request.clientAddress) via \(request.peerAddress)".utf8))
        }
        router.on(.get, "/big") { _ in Response(status: .ok, body: [UInt8](repeating: 0x61, count: 16 << 20)) }
        router.on(.get, "/items/{id}") { request in
            let id = try request.parameters.require("id", as: Int.self)
            return Response(status: .ok, body: Array("item \(id)".utf8))
        }
        router.on(.get, "/bad-header") { _ in
            Response(status: .ok, headers: HTTPHeaders([("X-Evil", "a\r\nSet-Cookie: x")]), body: [])
        }
        return try router.build()
    }
}

func get(_ path: String, _ extra: String = "") -> String {
    "GET \(path) HTTP/1.1\r\nHost: test\r\n\(extra)\r\n"
}
