@testable import CareLedger
import HTTP
import Testing

@Suite struct JSONBodyTests {
    private struct Unencodable: Encodable {
        let value = Double.nan
    }

    /// A response that fails to encode is a 500 in the error shape, never a 200 with `{}`.
    @Test func aValueThatDoesNotEncodeIsA500NotAnEmptySuccess() throws {
        let error = #expect(throws: HTTPError.self) { try JSONBody.response(.ok, Unencodable()) }
        #expect(error?.status == .internalServerError)
        let rendered = Response.error(try #require(error), requestId: "r1")
        #expect(rendered.status.code == 500)
        #expect(String(decoding: rendered.body, as: UTF8.self) == #"{"error":{"code":"internal_error","message":"Internal server error.","requestId":"r1"}}"#)
        #expect(throws: HTTPError.self) { try JSONBody.object(Unencodable(), adding: [("document", Array("{}".utf8))]) }
        #expect(try JSONBody.object(["a": 1], adding: [("b", Array("[2]".utf8))]) == Array(#"{"a":1,"b":[2]}"#.utf8))
    }
}
