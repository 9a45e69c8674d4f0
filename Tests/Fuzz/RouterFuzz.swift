// libFuzzer entry point for what a request meets after the wire parser: routing (path decoding, the
// trie, path parameters as numbers), query decoding and the error rendering. Built by
// Tests/Fuzz/run.sh together with Sources/HTTP/{Wire,Messages,Routing,Errors} and
// Tests/HTTPTests/DecodeHarness.swift into one module.
//
// Every input is a request as a client sends it. Invariants, beyond "does not crash":
// 1. The router answers every request it is given, and never with a 5xx: every failure a request
//    can cause is the client's (400, 404, 405), in the JSON error shape.
// 2. Query decoding is stable: the decoded pairs, encoded again, decode to the same pairs.
// 3. A path parameter read as a number is that number's decimal text, or a 400.
import Dispatch

private let router: Router = {
    var builder = RouterBuilder()
    // The shapes of the API's templates: literals, parameters between literals, numbers in paths.
    for template in ["/health", "/v1/ledger/entries", "/v1/ledger/entries/{seq}", "/v1/ledger/proofs/inclusion",
                     "/v1/patients/{patientId}", "/v1/patients/{patientId}/consents", "/v1/orgs/{orgId}/keys/{keyId}",
                     "/v1/exchanges", "/v1/exchanges/{exchangeId}/proof"] {
        for method in [HTTPMethod.get, .post, .delete] {
            builder.on(method, template, use: echo)
        }
    }
    return (try? builder.build()) ?? { preconditionFailure("the fuzz route table must build") }()
}()

/// Reads every parameter the way handlers do (numbers as Int64, the query decoded) and checks it.
@Sendable private func echo(_ request: Request) async throws -> Response {
    let query = try request.query()
    var encoded: [String] = []
    for (name, value) in query.pairs {
        encoded.append(percentEncoded(name) + "=" + percentEncoded(value))
        if let number = Int64(value) { precondition(String(number) == value.trimmingLeadingZerosAndPlus(), "Int64 round trip") }
    }
    let again = try QueryParameters(parsing: encoded.joined(separator: "&"))
    precondition(again == query, "query decoding is not stable")
    for name in ["seq", "patientId", "orgId", "keyId", "exchangeId"] {
        guard let raw = request.parameters[name] else { continue }
        if name == "seq" {
            let seq = try request.parameters.require(name, as: Int64.self)
            precondition(String(seq) == raw.trimmingLeadingZerosAndPlus(), "path number round trip")
        }
    }
    return .json(.ok, Array(#"{"ok":true}"#.utf8))
}

private func percentEncoded(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        let isUnreserved = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            || byte == 0x2D || byte == 0x2E || byte == 0x5F || byte == 0x7E
        if isUnreserved {
            out.unicodeScalars.append(Unicode.Scalar(byte))
        } else {
            let digits = Array("0123456789ABCDEF".utf8)
            out += "%" + String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]], as: UTF8.self)
        }
    }
    return out
}

private extension String {
    /// How Swift's integer parser reads decimal text back: an optional sign ('+' dropped), no leading zeros.
    func trimmingLeadingZerosAndPlus() -> String {
        var text = Substring(self)
        var sign = ""
        if text.first == "+" { text = text.dropFirst() } else if text.first == "-" { sign = "-"; text = text.dropFirst() }
        let digits = text.drop { $0 == "0" }
        let result = digits.isEmpty ? "0" : String(digits)
        return result == "0" ? "0" : sign + result
    }
}

/// The router's answer, waited for on this thread (libFuzzer calls in synchronously).
private func respond(_ request: Request) -> Response {
    let box = ResponseBox()
    let done = DispatchSemaphore(value: 0)
    Task {
        box.response = await router.respond(to: request)
        done.signal()
    }
    done.wait()
    return box.response ?? { preconditionFailure("no response") }()
}

/// `@unchecked Sendable`: written once by the task before it signals, read only after the wait.
private final class ResponseBox: @unchecked Sendable {
    var response: Response?
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var limits = HTTPParserLimits()
    limits.maxBodyBytes = 4096
    let decoded = decodeStream(bytes, limits: limits)
    for (head, event) in zip(decoded.heads, decoded.events) {
        guard case .request(_, _, let body) = event else { continue }
        let response = respond(Request(head: head, body: Array(body.utf8), requestId: "fuzz"))
        precondition(response.status.code < 500, "the router answered \(response.status.code) to \(head.method.rawValue) \(head.target)")
        if response.status.code >= 400 {
            let text = String(decoding: response.body, as: UTF8.self)
            precondition(text.hasPrefix(#"{"error":{"code":""#), "an error outside the JSON error shape: \(text)")
        }
    }
    return 0
}
