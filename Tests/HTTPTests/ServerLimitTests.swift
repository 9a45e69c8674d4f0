@testable import HTTP
import TestSupport
import Testing

@Suite(.serialized) struct ServerLimitTests {
    private static func small(_ configuration: inout HTTPServerConfiguration) {
        configuration.limits.maxRequestLineBytes = 64
        configuration.limits.maxHeaderBytes = 256
        configuration.limits.maxHeaderCount = 5
        configuration.limits.maxBodyBytes = 1024
    }

    @Test(arguments: [
        (get("/" + String(repeating: "a", count: 100)), 414),
        (get("/health", "X-Big: \(String(repeating: "b", count: 300))\r\n"), 431),
        (get("/health", (1...6).map { "X-\($0): v\r\n" }.joined()), 431),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n\(String(repeating: "c", count: 1024))\r\n1\r\nc\r\n0\r\n\r\n", 413),
    ])
    func limitAnswersItsStatusAndCloses(raw: String, status: Int) async throws {
        let test = try TestServer.start(Self.small)
        let client = try await test.connect()
        try await client.send(raw)
        let reply = try await client.readReply()
        #expect(reply.status == status)
        #expect(reply.header("Connection") == "close")
        #expect(reply.bodyText.contains(#""error":{"code":"#))
        #expect(try await client.isClosedByServer())
        await test.stop()
    }

    @Test func oversizedContentLengthIsRefusedBeforeTheBodyIsSent() async throws {
        let test = try TestServer.start(Self.small)
        let client = try await test.connect()
        // Only the head is sent: the 413 must arrive without the server waiting for 10 MB.
        try await client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10485760\r\n\r\n")
        let reply = try await client.readReply()
        #expect(reply.status == 413 && reply.header("Connection") == "close")
        await test.stop()
    }

    @Test func oversizedBodyBeingSentStillGetsThe413() async throws {
        let test = try TestServer.start(Self.small)
        let client = try await test.connect()
        // The client keeps sending after the server has answered; lingering close keeps the 413 readable.
        try await client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n" + String(repeating: "x", count: 200_000))
        let reply = try await client.readReply()
        #expect(reply.status == 413)
        await test.stop()
    }

    @Test func tooManyConnectionsIsA503() async throws {
        let test = try TestServer.start { $0.maxConnections = 2 }
        let first = try await test.connect()
        let second = try await test.connect()
        try await first.send(get("/health"))
        _ = try await first.readReply()
        try await second.send(get("/health"))
        _ = try await second.readReply()
        let third = try await test.connect()
        let refused = try await third.readReply()
        #expect(refused.status == 503 && refused.header("Retry-After") == "1")
        #expect(try await third.isClosedByServer())
        await test.stop()
    }

    @Test func slowHeaderIsTimedOutWith408() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        try await client.send("GET /health HTTP/1.1\r\nHost: t\r\n")
        try await test.waitForConnection("reading a head") { if case .readingHead = $0 { true } else { false } }
        await test.advance(by: .milliseconds(9_900))
        #expect(try await client.pendingBytes() == 0, "nothing before the 10 s header deadline")
        await test.advance(by: .milliseconds(100))
        let reply = try await client.readReply()
        #expect(reply.status == 408)
        #expect(try await client.isClosedByServer())
        await test.stop()
    }

    @Test func slowlorisDrippingBytesIsCutOffAtTheHeaderDeadline() async throws {
        let test = try TestServer.start()
        let slow = try await test.connect()
        try await slow.send("GET /health HTTP/1.1\r\n")
        try await test.waitForConnection("reading a head") { if case .readingHead = $0 { true } else { false } }
        // Each line arrives well within any per-read gap; only a whole-head deadline stops this.
        for index in 0..<9 {
            await test.advance(by: .seconds(1))
            try await slow.send("X-\(index): v\r\n")
        }
        #expect(try await slow.pendingBytes() == 0)
        await test.advance(by: .seconds(1))
        #expect(String(decoding: try await slow.readToEnd(), as: UTF8.self).contains(" 408 "))
        await test.stop()
    }

    @Test func aConnectionThatNeverSendsAByteIsClosedAtTheHeaderDeadline() async throws {
        let test = try TestServer.start()
        let silent = try await test.connect()
        try await test.waitForConnection("accepted") { if case .connected = $0 { true } else { false } }
        await test.advance(by: .milliseconds(9_900))
        #expect(test.server.openConnections == 1)
        #expect(try await silent.pendingBytes() == 0)
        await test.advance(by: .milliseconds(100))
        #expect(try await silent.readToEnd().isEmpty, "closed silently: it asked nothing")
        try await waitUntil("the connection is released") { test.server.openConnections == 0 }
        await test.stop()
    }

    @Test func slowClientDoesNotHoldUpOthers() async throws {
        let test = try TestServer.start()
        let slow = try await test.connect()
        try await slow.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\npartial")
        let fast = try await test.connect(receiveTimeout: .seconds(1))
        try await fast.send(get("/health"))
        #expect(try await fast.readReply().status == 200, "answered within the one-second receive deadline")
        await test.stop()
    }

    @Test func slowBodyIsTimedOutWith408() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        try await client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        try await test.waitForConnection("reading a body") { if case .readingBody = $0 { true } else { false } }
        await test.advance(by: .milliseconds(29_900))
        #expect(try await client.pendingBytes() == 0, "nothing before the 30 s body deadline")
        await test.advance(by: .milliseconds(100))
        #expect(try await client.readReply().status == 408)
        await test.stop()
    }

    @Test func idleKeepAliveConnectionIsClosedSilently() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        try await client.send(get("/health"))
        _ = try await client.readReply()
        try await test.waitForConnection("idle") { if case .idle = $0 { true } else { false } }
        await test.advance(by: .seconds(59))
        #expect(try await client.pendingBytes() == 0)
        try await client.send(get("/health"))
        #expect(try await client.readReply().status == 200, "still open within the keep-alive time")
        try await test.waitForConnection("idle again") { if case .idle = $0 { true } else { false } }
        await test.advance(by: .seconds(60))
        #expect(try await client.readToEnd().isEmpty, "idle close sends no response")
        await test.stop()
    }

    @Test func clientThatStopsReadingIsDroppedAtTheWriteDeadline() async throws {
        let test = try TestServer.start()
        let client = try await test.connect(receiveTimeout: .seconds(5))
        try await client.send(get("/big"))
        // The access line is written as the response starts going out.
        try await test.waitForConnection("writing") { if case .writing = $0 { true } else { false } }
        await test.advance(by: .seconds(30))
        // 16 MiB cannot fit in socket buffers; after the deadline the server has given up.
        let received = try await client.readToEnd()
        #expect(received.count < 16 << 20)
        await test.stop()
    }

    @Test func oneAddressCannotHoldMoreThanItsShareOfConnections() async throws {
        let test = try TestServer.start { $0.maxConnectionsPerAddress = 2 }
        let first = try await test.connect()
        let second = try await test.connect()
        for client in [first, second] {
            try await client.send(get("/health"))
            #expect(try await client.readReply().status == 200)
        }
        let third = try await test.connect()
        let refused = try await third.readReply()
        #expect(refused.status == 503 && refused.header("Retry-After") == "1")
        #expect(try await third.isClosedByServer())
        // A closed connection gives its place back.
        try await first.shutdownWrite()
        #expect(try await first.isClosedByServer())
        try await waitUntil("the first connection is released") { test.server.openConnections == 1 }
        let fourth = try await test.connect()
        try await fourth.send(get("/health"))
        #expect(try await fourth.readReply().status == 200)
        await test.stop()
    }

    /// Connections another instance of the deployment holds from the same address take their
    /// places here too, and its openConnectionsByAddress is what this one reports to the others.
    @Test func connectionsHeldElsewhereCountAgainstTheAddressShare() async throws {
        struct Elsewhere: ConnectionsElsewhere {
            func openConnections(from address: String) -> Int { address == "127.0.0.1" ? 2 : 0 }
        }
        let test = try TestServer.start {
            $0.maxConnectionsPerAddress = 3
            $0.connectionsElsewhere = Elsewhere()
        }
        let first = try await test.connect()
        try await first.send(get("/health"))
        #expect(try await first.readReply().status == 200)
        #expect(test.server.openConnectionsByAddress() == ["127.0.0.1": 1])
        let second = try await test.connect()
        let refused = try await second.readReply()
        #expect(refused.status == 503, "two elsewhere and one here fill a share of three")
        #expect(try await second.isClosedByServer())
        await test.stop()
    }

    @Test func aTrustedProxyIsExemptFromTheAddressShare() async throws {
        let test = try TestServer.start {
            $0.maxConnectionsPerAddress = 1
            $0.trustedProxies = try! AddressSet(parsing: ["127.0.0.0/8"])
        }
        var clients: [TestClient] = []
        for _ in 0..<3 {
            let client = try await test.connect()
            try await client.send(get("/health"))
            #expect(try await client.readReply().status == 200)
            clients.append(client)
        }
        await test.stop()
    }

    @Test func gracefulShutdownFinishesTheInFlightRequest() async throws {
        let test = try TestServer.start()
        let busy = try await test.connect()
        let idle = try await test.connect()
        try await busy.send(get("/slow"))
        try await waitUntil("the request is in its handler") { test.gate.waiting == 1 }
        test.server.shutdown()
        #expect(try await idle.isClosedByServer())
        // A pass over every loop after the shutdown's own: the busy connection knows it is draining.
        _ = await test.server.connectionStates()
        test.gate.open()
        let reply = try await busy.readReply()
        #expect(reply.status == 200 && reply.bodyText == "slow")
        #expect(reply.header("Connection") == "close")
        await test.server.waitUntilStopped()
        await #expect(throws: TestClient.Failure.self) { _ = try await test.connect() }
    }

    @Test func shutdownForceClosesAfterTheDrainTimeout() async throws {
        let test = try TestServer.start { $0.timeouts.drain = .milliseconds(100) }
        let busy = try await test.connect()
        try await busy.send(get("/slow"))
        try await waitUntil("the request is in its handler") { test.gate.waiting == 1 }
        await test.stop()
        #expect(try await busy.isClosedByServer(), "closed although its handler never finished")
        test.gate.open()
    }
}
