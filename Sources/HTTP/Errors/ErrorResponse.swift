// The fuzzers compile this file into one module together with JSONText.
#if canImport(Telemetry)
import Telemetry
#endif

extension Response {
    /// The one error shape of the whole API: `{"error":{"code","message","requestId"}}`.
    public static func error(_ error: any Error, requestId: String) -> Response {
        let shown: any HTTPResponseError = (error as? any HTTPResponseError) ?? HTTPError.internalError
        var body = #"{"error":{"code":"#
        JSONText.appendQuoted(shown.code, to: &body)
        body += #","message":"#
        JSONText.appendQuoted(shown.message, to: &body)
        body += #","requestId":"#
        JSONText.appendQuoted(requestId, to: &body)
        body += "}}"
        var response = Response.json(shown.status, Array(body.utf8))
        for field in shown.headers { response.headers.add(name: field.name, value: field.value) }
        return response
    }
}
