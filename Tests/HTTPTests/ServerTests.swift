import Foundation
@testable import HTTP
import TestSupport
import IOLoop
import Testing

@Suite(.serialized) struct ServerTests {
    @Test func servesHealthWithDateLengthAndRequestId() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        try await client.send(get("/health"))
        let reply = try await client.readReply()
        #expect(reply.status == 200)
        #expect(reply.bodyText == #"{"status":"ok"}"#)
        #expect(reply.header("Content-Length") == "15")
        #expect(reply.header("Date")?.hasSuffix("GMT") == true)
        #expect(reply.header("X-Request-Id")?.count == 32)
        await test.stop()
    }

    @Test(arguments: [true, false]) func handlersRunOnTheEventLoopWhenAsked(onLoops: Bool) async throws {
        var router = RouterBuilder()
        router.on(.get, "/where") { _ in
            let before = IOEventLoop.current
            try await Task.sleep(for: .milliseconds(10))
            let after = IOEventLoop.current
            // The same loop before and after a wait: the task stays on its executor.
            return Response(status: .ok, body: Array("\(before.map { "\($0.index)" } ?? "none") \(after.map { "\($0.index)" } ?? "none")".utf8))
        }
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        configuration.handlersRunOnEventLoops = onLoops
        let server = HTTPServer(configuration: configuration, responder: try router.build(), accessLog: nil)
        let port = try server.start()
        let client = try await TestClient.connect(port: port, receiveTimeout: .seconds(5))
        try await client.send(get("/where"))
        let reply = try await client.readReply()
        let places = reply.bodyText.split(separator: " ").map(String.init)
        #expect(reply.status == 200 && places.count == 2)
        if onLoops {
            #expect(places[0] != "none" && places[0] == places[1], "\(reply.bodyText)")
        } else {
            #expect(places == ["none", "none"])
        }
        server.shutdown()
        await server.waitUntilStopped()
    }

    @Test func dualStackListenerAcceptsIPv4Clients() async throws {
        let test = try TestServer.start { $0.host = "::" }
        let client = try await test.connect()
        try await client.send(get("/health"))
        #expect(try await client.readReply().status == 200)
        try await client.send(get("/whoami"))
        #expect(try await client.readReply().bodyText == "127.0.0.1 via 127.0.0.1", "an IPv4 client of a dual-stack socket is its IPv4 address")
        await test.stop()
    }

    @Test func unresolvableHostFailsToStartWithAClearError() throws {
        var configuration = HTTPServerConfiguration()
        configuration.host = "no-such-host.invalid"
        configuration.port = 0
        let server = HTTPServer(configuration: configuration, responder: try RouterBuilder().build(), accessLog: nil)
        #expect(throws: SocketError.self) { try server.start() }
    }

    @Test func requestSplitAtEveryByteIsServed() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        let request = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
        for byte in request.utf8 {
            try await client.send([byte])
            try await Task.sleep(for: .milliseconds(1))
        }
        let reply = try await client.readReply()
        #expect(reply.status == 200 && reply.bodyText == "hello")
        await test.stop()
    }

    @Test func hundredPipelinedRequestsAnswerInOrder() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        let batch = (0..<100).map { index in
            index % 2 == 0 ? get("/items/\(index)", "X-Request-Id: r\(index)\r\n")
                : "POST /echo HTTP/1.1\r\nHost: t\r\nX-Request-Id: r\(index)\r\nContent-Length: 4\r\n\r\n\(String(format: "%04d", index))"
        }.joined()
        try await client.send(batch)
        for index in 0..<100 {
            let reply = try await client.readReply()
            #expect(reply.header("X-Request-Id") == "r\(index)")
            #expect(reply.bodyText == (index % 2 == 0 ? "item \(index)" : String(format: "%04d", index)))
        }
        await test.stop()
    }

    @Test func pipelinedBurstLargerThanOneReadIsServedCompletely() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        // About 200 KB in one write: several reads' worth, arriving faster than the server answers.
        let count = 3000
        try await client.send((0..<count).map { get("/items/\($0)") }.joined())
        for index in 0..<count {
            #expect(try await client.readReply().bodyText == "item \(index)")
        }
        await test.stop()
    }

    @Test func clientThatHalfClosesAfterItsRequestStillGetsTheAnswerAndIsClosed() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        try await client.send(get("/health"))
        try await client.shutdownWrite()
        #expect(try await client.readReply().status == 200)
        let clock = ContinuousClock()
        let started = clock.now
        #expect(try await client.isClosedByServer())
        #expect(clock.now - started < .seconds(2), "the server must notice the half-close, not wait for the idle timeout")
        await test.stop()
    }

    @Test func keepAliveReusesTheConnection() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        for index in 1...3 {
            try await client.send(get("/items/\(index)"))
            let reply = try await client.readReply()
            #expect(reply.bodyText == "item \(index)")
            #expect(reply.header("Connection") == nil)
        }
        #expect(test.server.openConnections == 1)
        await test.stop()
    }

    @Test func connectionCloseIsHonoured() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        try await client.send(get("/health", "Connection: close\r\n"))
        let reply = try await client.readReply()
        #expect(reply.header("Connection") == "close")
        #expect(try await client.isClosedByServer())
        await test.stop()
    }

    @Test func http10ClosesUnlessKeepAliveIsAsked() async throws {
        let test = try TestServer.start()
        let plain = try await test.connect()
        try await plain.send("GET /health HTTP/1.0\r\n\r\n")
        #expect(try await plain.readReply().header("Connection") == "close")
        #expect(try await plain.isClosedByServer())

        let kept = try await test.connect()
        for _ in 0..<2 {
            try await kept.send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let reply = try await kept.readReply()
            #expect(reply.status == 200 && reply.header("Connection") == "keep-alive")
        }
        await test.stop()
    }

    @Test func expectContinueGetsAnInterimResponse() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        try await client.send("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        let interim = try await client.readReply()
        #expect(interim.status == 100)
        try await client.send("data")
        let reply = try await client.readReply()
        #expect(reply.status == 200 && reply.bodyText == "data")
        await test.stop()
    }

    @Test func headAnswersHeadersWithoutBody() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        try await client.send("HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n" + get("/items/7"))
        let head = try await client.readReply(headOnly: true)
        #expect(head.status == 200 && head.header("Content-Length") == "15" && head.body.isEmpty)
        // The next response starts right after the head: no body bytes were sent for HEAD.
        #expect(try await client.readReply().bodyText == "item 7")
        await test.stop()
    }

    @Test func routingErrorsAreJSON() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        try await client.send(get("/missing", "X-Request-Id: abc-123\r\n"))
        let missing = try await client.readReply()
        #expect(missing.status == 404)
        #expect(missing.bodyText == #"{"error":{"code":"not_found","message":"No such resource.","requestId":"abc-123"}}"#)
        try await client.send("DELETE /health HTTP/1.1\r\nHost: t\r\n\r\n")
        let wrongMethod = try await client.readReply()
        #expect(wrongMethod.status == 405 && wrongMethod.header("Allow") == "GET, HEAD")
        try await client.send(get("/items/abc"))
        let badParameter = try await client.readReply()
        #expect(badParameter.status == 400 && badParameter.bodyText.contains(#""code":"bad_request""#))
        await test.stop()
    }

    @Test func malformedRequestIdIsReplaced() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        try await client.send(get("/health", "X-Request-Id: has space\r\n"))
        let reply = try await client.readReply()
        #expect(reply.header("X-Request-Id") != "has space")
        #expect(reply.header("X-Request-Id")?.count == 32)
        await test.stop()
    }

    @Test func handlerHeaderWithCRLFBecomesA500() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        try await client.send(get("/bad-header"))
        let reply = try await client.readReply()
        #expect(reply.status == 500)
        #expect(reply.header("Set-Cookie") == nil)
        await test.stop()
    }

    @Test func smuggledRequestIsRefusedAndTheConnectionClosed() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        try await client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get("/health"))
        let reply = try await client.readReply()
        #expect(reply.status == 400 && reply.header("Connection") == "close")
        #expect(try await client.readToEnd().isEmpty, "nothing may be answered for the smuggled request")
        await test.stop()
    }

    @Test func unsupportedVersionAndCodingHaveTheirStatuses() async throws {
        let test = try TestServer.start()
        for (raw, status) in [
            ("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
            ("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            ("GET / HTTP/1.1\r\n\r\n", 400),
        ] {
            let client = try await test.connect()
            try await client.send(raw)
            #expect(try await client.readReply().status == status)
            #expect(try await client.isClosedByServer())
        }
        await test.stop()
    }

    @Test func accessLogHasOneLinePerRequestWithoutQueryValues() async throws {
        let test = try TestServer.start()
        let client = try await test.connect()
        try await client.send(get("/items/987654321?secret=value", "X-Request-Id: log-1\r\n"))
        _ = try await client.readReply()
        await test.stop()
        let line = try #require(test.log.captured.first { $0.contains("log-1") })
        let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(json["route"] as? String == "/items/{id}")
        #expect(json["method"] as? String == "GET")
        #expect(json["status"] as? Int == 200)
        #expect(json["bytes"] as? Int ?? 0 > 0)
        #expect(json["durationMs"] != nil && json["time"] != nil)
        #expect(!line.contains("secret") && !line.contains("value") && !line.contains("987654321"))
    }
}

/// Who the client is behind a proxy: only trusted proxies' forwarding headers are believed.
@Suite struct ClientAddressTests {
    private let proxies = try! AddressSet(parsing: ["10.0.0.0/8", "2001:db8::/32", " 192.0.2.7 "])

    @Test func addressSetsMatchAddressesAndBlocksOfBothFamilies() throws {
        #expect(proxies.contains("10.1.2.3") && proxies.contains("192.0.2.7") && proxies.contains("2001:db8:1::5"))
        #expect(proxies.contains("::ffff:10.0.0.1"), "an IPv4-mapped address is its IPv4 address")
        #expect(!proxies.contains("11.0.0.1") && !proxies.contains("192.0.2.8") && !proxies.contains("2001:db9::1"))
        #expect(!proxies.contains("not-an-address") && !proxies.contains(""))
        #expect(AddressSet().contains("127.0.0.1") == false)
        for bad in ["10.0.0.0/33", "2001:db8::/129", "example.com", "10.0.0.0/x", "1.2.3"] {
            #expect(throws: AddressSetError.self, "\(bad)") { try AddressSet(parsing: [bad]) }
        }
    }

    private func resolve(_ peer: String, _ headers: [(String, String)]) -> String {
        ClientAddress.resolve(peer: peer, headers: HTTPHeaders(headers), trusted: proxies)
    }

    @Test func anUntrustedPeerIsTheClientWhateverItClaims() {
        #expect(resolve("203.0.113.9", [("X-Forwarded-For", "198.51.100.1")]) == "203.0.113.9")
        #expect(resolve("203.0.113.9", [("Forwarded", "for=198.51.100.1")]) == "203.0.113.9")
    }

    @Test func theChainIsReadFromTheNearestHopPastTrustedProxies() {
        #expect(resolve("10.0.0.1", [("X-Forwarded-For", "198.51.100.1")]) == "198.51.100.1")
        // A client's forged entry sits left of the address our proxy appended, so it is never reached.
        #expect(resolve("10.0.0.1", [("X-Forwarded-For", "6.6.6.6, 198.51.100.1")]) == "198.51.100.1")
        #expect(resolve("10.0.0.1", [("X-Forwarded-For", "198.51.100.1, 10.9.9.9")]) == "198.51.100.1", "two trusted hops")
        #expect(resolve("10.0.0.1", [("X-Forwarded-For", "198.51.100.1"), ("X-Forwarded-For", "10.9.9.9")]) == "198.51.100.1")
        #expect(resolve("10.0.0.1", [("X-Forwarded-For", "10.2.2.2")]) == "10.2.2.2", "all trusted: the farthest")
        #expect(resolve("10.0.0.1", [("X-Forwarded-For", "unknown, garbage")]) == "10.0.0.1", "no address: the proxy")
        #expect(resolve("10.0.0.1", []) == "10.0.0.1")
        #expect(resolve("10.0.0.1", [("X-Forwarded-For", "::ffff:198.51.100.1")]) == "198.51.100.1", "normalized")
    }

    @Test func forwardedElementsAreReadWithQuotesBracketsAndPorts() {
        #expect(resolve("10.0.0.1", [("Forwarded", #"for="[2001:db9::7]:4711";proto=https"#)]) == "2001:db9::7")
        #expect(resolve("10.0.0.1", [("Forwarded", "for=198.51.100.2:80, for=10.3.3.3")]) == "198.51.100.2")
        #expect(resolve("10.0.0.1", [("Forwarded", "for=_hidden")]) == "10.0.0.1")
    }

    @Test func theServerAttributesRequestsThroughTrustedProxiesOnly() async throws {
        for trusted in [true, false] {
            let test = try TestServer.start { if trusted { $0.trustedProxies = try! AddressSet(parsing: ["127.0.0.1"]) } }
            let client = try await test.connect()
            try await client.send(get("/whoami", "X-Forwarded-For: 6.6.6.6, 198.51.100.4\r\n"))
            let reply = try await client.readReply()
            #expect(reply.bodyText == (trusted ? "198.51.100.4 via 127.0.0.1" : "127.0.0.1 via 127.0.0.1"))
            await test.stop()
        }
    }
}
