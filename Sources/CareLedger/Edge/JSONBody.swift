import FoundationEssentials
import HTTP
import Ledger

/// Request bodies in, response bodies out. Bodies are decoded strictly: a field the endpoint does
/// not know is refused rather than ignored, so a typo (`"kindd"`) is a clear 400 instead of a
/// silently different request.
enum JSONBody {
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Decodes the body as `T`, accepting only `fields` at the top level.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, fields: Set<String>) throws(HTTPError) -> T {
        if let contentType = request.headers.first(name: "Content-Type") {
            let mediaType = contentType.prefix { $0 != ";" }.filter { $0 != " " && $0 != "\t" }.lowercased()
            guard mediaType == "application/json" || mediaType.hasSuffix("+json") else { throw APIError.unsupportedMediaType }
        }
        guard !request.body.isEmpty else { throw HTTPError.badRequest("The request needs a JSON object body.") }
        let data = Data(request.body)
        let keys: [String]
        do {
            keys = try JSONDecoder().decode(TopLevelKeys.self, from: data).keys
        } catch {
            throw HTTPError.badRequest("The body is not a JSON object.")
        }
        if let unknown = keys.sorted().first(where: { !fields.contains($0) }) {
            throw HTTPError.badRequest("Unknown field '\(unknown)'.")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw HTTPError.badRequest(describe(error))
        } catch let error as HTTPError {
            throw error
        } catch {
            throw HTTPError.badRequest("The body could not be read.")
        }
    }

    /// The body as a parsed JSON value (for bodies that carry documents, kept exactly as sent): 415
    /// unless JSON (JSON-LD included, as EPCIS clients send it), 400 unless valid I-JSON, and, with `fields`, 400 unless an object with only those members.
    static func parse(_ request: Request, fields: Set<String>? = nil) throws(HTTPError) -> JSONValue {
        if let contentType = request.headers.first(name: "Content-Type")?.lowercased(),
           !contentType.hasPrefix("application/json"), !contentType.hasPrefix("application/ld+json") {
            throw APIError.unsupportedMediaType
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(request.body)
        } catch {
            throw HTTPError.badRequest("The body is not valid JSON: \(error).")
        }
        guard let fields else { return value }
        guard case .object(let members) = value else { throw HTTPError.badRequest("The body is not a JSON object.") }
        if let unknown = members.map(\.key).sorted().first(where: { !fields.contains($0) }) {
            throw HTTPError.badRequest("Unknown field '\(unknown)'.")
        }
        return value
    }

    /// The optional body of a cancellation: nothing, or `{"reason": "..."}` with 1-500 characters.
    static func optionalReason(_ request: Request) throws -> String? {
        guard !request.body.isEmpty else { return nil }
        guard let value = try parse(request, fields: ["reason"])["reason"] else { return nil }
        guard let text = value.stringValue, (1...500).contains(text.count) else { throw DomainError.invalid("'reason' must be a string of 1 to 500 characters.") }
        return text
    }

    /// A JSON response. A value that does not encode (a non-finite number, say) is a 500 in the
    /// error shape, never a success with a made-up body.
    static func response(_ status: HTTPStatus, _ value: some Encodable) throws(HTTPError) -> Response {
        .json(status, try encoded(value))
    }

    /// The JSON object `value` encodes to, with members whose values are JSON text already (stored
    /// canonical documents, sent exactly as they are rather than decoded and encoded again).
    static func object(_ value: some Encodable, adding members: [(name: String, json: [UInt8])]) throws(HTTPError) -> [UInt8] {
        try object(encoded: try encoded(value), adding: members)
    }

    /// An object already written as JSON, with more members appended.
    static func object(encoded object: [UInt8], adding members: [(name: String, json: [UInt8])]) throws(HTTPError) -> [UInt8] {
        var body = object
        guard body.last == UInt8(ascii: "}") else { throw HTTPError.internalError }
        body.removeLast()
        for member in members {
            if body.count > 1 { body.append(UInt8(ascii: ",")) }
            body += Array("\"\(member.name)\":".utf8) + member.json
        }
        body.append(UInt8(ascii: "}"))
        return body
    }

    /// A page of items already encoded as JSON: `{"items":[...],"next":...}`, plus `"cursor"` (where a
    /// feed's poller goes on from) when given, even as null.
    static func page(encodedItems: [[UInt8]], next: String?, cursor: String?? = .none) throws(HTTPError) -> Response {
        var items: [UInt8] = [UInt8(ascii: "[")]
        for (position, item) in encodedItems.enumerated() {
            if position > 0 { items.append(UInt8(ascii: ",")) }
            items += item
        }
        items.append(UInt8(ascii: "]"))
        return .json(.ok, try object(PageLinks(next: next, cursor: cursor), adding: [("items", items)]))
    }

    static func encoded(_ value: some Encodable) throws(HTTPError) -> [UInt8] {
        do {
            return Array(try encoder.encode(value))
        } catch {
            throw HTTPError.internalError
        }
    }

    private struct PageLinks: Encodable {
        let next: String?
        let cursor: String??

        private enum CodingKeys: String, CodingKey { case next, cursor }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(next, forKey: .next)
            if case .some(let cursor) = cursor { try container.encode(cursor, forKey: .cursor) }
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            return "Missing field '\(path(context.codingPath + [key]))'."
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "Field '\(path(context.codingPath))' has the wrong type."
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "The body is not valid JSON." : "Field '\(path(context.codingPath))' is not valid."
        @unknown default:
            return "The body could not be read."
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}

private struct TopLevelKeys: Decodable {
    let keys: [String]

    private struct AnyKey: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        keys = try decoder.container(keyedBy: AnyKey.self).allKeys.map { $0.stringValue }
    }
}
