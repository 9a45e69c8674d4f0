@testable import HTTP
import Testing
import Telemetry

@Suite struct RouterTests {
    private func request(_ method: HTTPMethod, _ target: String) -> Request {
        Request(head: RequestHead(method: method, target: target, version: .http1_1, headers: HTTPHeaders([("Host", "t")])),
                requestId: "rid")
    }

    private func router() throws -> Router {
        var builder = RouterBuilder()
        builder.on(.get, "/v1/orgs") { _ in Response(status: .ok, body: Array("list".utf8)) }
        builder.on(.post, "/v1/orgs") { _ in Response(status: .created) }
        builder.on(.get, "/v1/orgs/{orgId}") { request in
            Response(status: .ok, body: Array("org \(request.parameters["orgId"] ?? "")".utf8))
        }
        builder.on(.get, "/v1/orgs/mine") { _ in Response(status: .ok, body: Array("literal".utf8)) }
        builder.on(.delete, "/v1/orgs/{orgId}/keys/{keyId}") { request in
            Response(status: .ok, body: Array("\(request.parameters["orgId"] ?? "")/\(request.parameters["keyId"] ?? "")".utf8))
        }
        builder.on(.get, "/v1/ledger/entries/{seq}") { request in
            let seq = try request.parameters.require("seq", as: Int64.self)
            return Response(status: .ok, body: Array("seq \(seq)".utf8))
        }
        builder.on(.get, "/fail") { _ in
            struct Secret: Error {}
            throw Secret()
        }
        return try builder.build()
    }

    private func body(_ response: Response) -> String { String(decoding: response.body, as: UTF8.self) }

    @Test func literalWinsOverParameter() async throws {
        let router = try router()
        #expect(body(await router.respond(to: request(.get, "/v1/orgs/mine"))) == "literal")
        #expect(body(await router.respond(to: request(.get, "/v1/orgs/org_1"))) == "org org_1")
    }

    @Test func parametersArePercentDecodedPerSegment() async throws {
        let response = try await router().respond(to: request(.delete, "/v1/orgs/a%2Fb/keys/k%20y"))
        #expect(body(response) == "a/b/k y")
        #expect(response.routeTemplate == "/v1/orgs/{orgId}/keys/{keyId}")
    }

    @Test func typedParameterRejectsNonNumbers() async throws {
        let response = try await router().respond(to: request(.get, "/v1/ledger/entries/x1"))
        #expect(response.status == .badRequest)
        #expect(body(response).contains("Path parameter 'seq'"))
        #expect(body(try await router().respond(to: request(.get, "/v1/ledger/entries/17"))) == "seq 17")
    }

    @Test func unknownPathIs404AndWrongMethodIs405WithAllow() async throws {
        let router = try router()
        #expect(await router.respond(to: request(.get, "/v1/nothing")).status == .notFound)
        #expect(await router.respond(to: request(.get, "/v1/orgs/a/keys")).status == .notFound)
        let wrong = await router.respond(to: request(.put, "/v1/orgs"))
        #expect(wrong.status == .methodNotAllowed)
        #expect(wrong.headers.first(name: "Allow") == "GET, HEAD, POST")
    }

    @Test func headFallsBackToGet() async throws {
        #expect(body(try await router().respond(to: request(.head, "/v1/orgs"))) == "list")
    }

    @Test func queryStringDoesNotAffectRouting() async throws {
        #expect(body(try await router().respond(to: request(.get, "/v1/orgs/o?x=1"))) == "org o")
    }

    @Test func absoluteFormTargetRoutesByItsPath() async throws {
        #expect(body(try await router().respond(to: request(.get, "http://example.org/v1/orgs/o?x=1"))) == "org o")
    }

    @Test func malformedPercentEncodingIs400() async throws {
        #expect(try await router().respond(to: request(.get, "/v1/orgs/%zz")).status == .badRequest)
    }

    @Test func unknownErrorsBecomeGeneric500s() async throws {
        let response = try await router().respond(to: request(.get, "/fail"))
        #expect(response.status == .internalServerError)
        #expect(body(response) == #"{"error":{"code":"internal_error","message":"Internal server error.","requestId":"rid"}}"#)
    }

    @Test func middlewareWrapsRoutesOutermostFirst() async throws {
        struct Tag: Middleware {
            let name: String
            func respond(to request: Request, next: RouteHandler) async throws -> Response {
                var response = try await next(request)
                response.headers.add(name: "X-Order", value: name)
                return response
            }
        }
        var builder = RouterBuilder()
        builder.add(middleware: Tag(name: "outer"))
        builder.add(middleware: Tag(name: "inner"))
        builder.on(.get, "/x") { _ in Response(status: .ok) }
        let response = try await builder.build().respond(to: request(.get, "/x"))
        #expect(response.headers["X-Order"] == ["inner", "outer"])
    }

    @Test func buildRefusesDuplicatesAndBadTemplates() {
        var duplicate = RouterBuilder()
        duplicate.on(.get, "/a") { _ in Response(status: .ok) }
        duplicate.on(.get, "/a") { _ in Response(status: .ok) }
        #expect(throws: RouterBuildError.duplicateRoute("GET /a")) { try duplicate.build() }

        var conflicting = RouterBuilder()
        conflicting.on(.get, "/a/{x}") { _ in Response(status: .ok) }
        conflicting.on(.get, "/a/{y}/b") { _ in Response(status: .ok) }
        #expect(throws: RouterBuildError.conflictingParameterNames("/a/{y}/b")) { try conflicting.build() }

        var bad = RouterBuilder()
        bad.on(.get, "no-slash") { _ in Response(status: .ok) }
        #expect(throws: RouterBuildError.invalidTemplate("no-slash")) { try bad.build() }
    }
}

@Suite struct QueryParametersTests {
    @Test func decodesPairsInOrderWithRepeats() throws {
        let query = try QueryParameters(parsing: "after=10&limit=5&box=in%20box&tag=a&tag=b+c&flag&=x")
        #expect(query["after"] == "10")
        #expect(query["box"] == "in box")
        #expect(query.all("tag") == ["a", "b c"])
        #expect(query["flag"] == "")
        #expect(query[""] == "x")
    }

    @Test func identifierWithPipeAndEncodedCharacters() throws {
        let query = try QueryParameters(parsing: "identifier=urn%3Aoid%3A1.2%7C12345")
        #expect(query["identifier"] == "urn:oid:1.2|12345")
    }

    @Test(arguments: ["a=%", "a=%2", "a=%zz", "%G1=b", "a=%ff"])
    func malformedEscapesAre400(_ raw: String) {
        #expect(throws: HTTPError.self) { try QueryParameters(parsing: raw) }
    }

    @Test func requestExposesPathAndQuery() throws {
        let request = Request(head: RequestHead(method: .get, target: "/v1/x?a=1&b=%C3%A9", version: .http1_1,
                                                headers: HTTPHeaders()), requestId: "r")
        #expect(request.path == "/v1/x")
        #expect(try request.query()["b"] == "é")
    }
}

@Suite struct ResponseEncoderTests {
    private func encode(_ response: Response, method: HTTPMethod = .get, keepAlive: Bool = true, http10: Bool = false) -> String {
        String(decoding: ResponseEncoder.encode(response, context: .init(
            requestMethod: method, requestId: "rid", keepAlive: keepAlive, clientIsHTTP10: http10,
            date: "Wed, 25 Nov 2026 12:00:00 GMT")), as: UTF8.self)
    }

    @Test func framingIsTheServersAlone() {
        var response = Response(status: .ok, body: Array("abc".utf8))
        response.headers.add(name: "Content-Length", value: "999")
        response.headers.add(name: "Transfer-Encoding", value: "chunked")
        response.headers.add(name: "Connection", value: "upgrade")
        response.headers.add(name: "X-Kept", value: "yes")
        #expect(encode(response) == "HTTP/1.1 200 OK\r\nDate: Wed, 25 Nov 2026 12:00:00 GMT\r\nContent-Length: 3\r\nX-Kept: yes\r\nX-Request-Id: rid\r\n\r\nabc")
    }

    @Test func closeAndHTTP10KeepAliveAreSpelledOut() {
        #expect(encode(Response(status: .ok), keepAlive: false).contains("Connection: close\r\n"))
        #expect(encode(Response(status: .ok), http10: true).contains("Connection: keep-alive\r\n"))
    }

    @Test func headAnd204And304CarryNoBody() {
        let head = encode(Response(status: .ok, body: Array("abc".utf8)), method: .head)
        #expect(head.hasSuffix("Content-Length: 3\r\nX-Request-Id: rid\r\n\r\n"))
        let noContent = encode(Response(status: .noContent, body: Array("x".utf8)))
        #expect(!noContent.contains("Content-Length") && noContent.hasSuffix("\r\n\r\n"))
        #expect(encode(Response(status: .notModified, body: Array("x".utf8))).hasSuffix("\r\n\r\n"))
    }

    @Test(arguments: ["a\r\nb", "a\nb", "a\u{0}b", "a\u{7f}"])
    func unsafeHeaderValueBecomes500(_ value: String) {
        let response = Response(status: .ok, headers: HTTPHeaders([("X-Bad", value)]))
        let encoded = encode(response)
        #expect(encoded.hasPrefix("HTTP/1.1 500 "))
        #expect(!encoded.contains("X-Bad"))
    }

    @Test func requestIdsAreAcceptedOnlyWhenWellFormed() {
        #expect(RequestID.accepting("abc-123_x.y:z") == "abc-123_x.y:z")
        #expect(RequestID.accepting("with space") == nil)
        #expect(RequestID.accepting(String(repeating: "a", count: 129)) == nil)
        #expect(RequestID.accepting("") == nil)
        #expect(RequestID.generate() != RequestID.generate())
    }

    @Test func jsonTextEscapesControlCharacters() {
        #expect(JSONText.quoted("a\"b\\c\n\u{1}é") == #""a\"b\\c\n\u0001é""#)
    }

    @Test func wallClockFormatsKnownInstants() {
        #expect(WallClock.imfFixdate(seconds: 784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(WallClock.rfc3339(seconds: 784_111_777, milliseconds: 5) == "1994-11-06T08:49:37.005Z")
    }
}
