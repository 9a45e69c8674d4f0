import HTTP
import TestSupport
import Synchronization

/// A log sink that keeps lines in memory for assertions.
final class CapturingLogSink: LogSink {
    private let lines = Mutex<[String]>([])

    func write(_ line: String) { lines.withLock { $0.append(line) } }
    func flush() {}

    var captured: [String] { lines.withLock { $0 } }
}

/// A server on an ephemeral loopback port with a small route table for socket-level tests.
struct TestServer {
    let server: HTTPServer
    let port: Int
    let log: CapturingLogSink

    /// Test timeouts are short so timeout tests finish quickly; limits are the defaults unless changed.
    static func start(_ configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws -> TestServer {
        var configuration = HTTPServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.eventLoopCount = 2
        configuration.timeouts.drain = .seconds(1)
        configure(&configuration)
        let log = CapturingLogSink()
        let server = HTTPServer(configuration: configuration, responder: try makeRouter(), accessLog: AccessLog(sink: log))
        let port = try server.start()
        return TestServer(server: server, port: port, log: log)
    }

    func connect(receiveTimeout: Duration = .seconds(5)) async throws -> TestClient {
        try await TestClient.connect(port: port, receiveTimeout: receiveTimeout)
    }

    func stop() async {
        server.shutdown()
        await server.waitUntilStopped()
    }

    static func makeRouter() throws -> Router {
        var router = RouterBuilder()
        router.on(.get, "/health") { _ in .json(.ok, Array(#"{"status":"ok"}"#.utf8)) }
        router.on(.post, "/echo") { request in Response(status: .ok, body: request.body) }
        router.on(.get, "/slow") { _ in
            try await Task.sleep(for: .milliseconds(300))
            return Response(status: .ok, body: Array("slow".utf8))
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
