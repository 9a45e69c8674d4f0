import Crypto
import HTTP
import Postgres

/// `Idempotency-Key` on a create: a retry with the same key and the same request answers with the
/// resource the first one created; the same key with a different request is refused (409). Keys are
/// per organization.
struct Idempotency: Sendable {
    let key: String
    /// SHA-256 of the method, path and body, so a key reused on another endpoint is a different request.
    let requestHash: String

    /// The request's key, or nil when it carries none.
    static func of(_ request: Request) throws(HTTPError) -> Idempotency? {
        guard let key = request.headers.first(name: "Idempotency-Key") else { return nil }
        guard (1...200).contains(key.utf8.count), key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw APIError.badRequest("Idempotency-Key must be 1-200 visible ASCII characters.")
        }
        let scope = Array("\(request.method.rawValue) \(request.path)\n".utf8)
        return Idempotency(key: key, requestHash: "sha256:" + SHA256.hexDigest(scope + request.body))
    }

    /// The resource an earlier request with this key created: nil if none, 409 if that request was a different one.
    func earlierResource(orgId: String, on runner: some QueryRunner) async throws -> String? {
        let rows = try await runner.query("SELECT request_hash, resource_id FROM idempotency_keys WHERE org_id = \(orgId) AND key = \(key)")
        guard let row = rows.first else { return nil }
        guard try row.decode("request_hash", as: String.self) == requestHash else {
            throw APIError.conflict("This Idempotency-Key was used with a different request.")
        }
        return try row.decode("resource_id", as: String.self)
    }

    /// Records the key for `resourceId`, in the transaction that creates it.
    func record(orgId: String, resourceId: String, on runner: some QueryRunner) async throws {
        try await runner.query("""
            INSERT INTO idempotency_keys (org_id, key, request_hash, resource_id) VALUES (\(orgId), \(key), \(requestHash), \(resourceId))
            """)
    }

    /// Runs a create that records `idempotency`; nil when a concurrent request with the same key
    /// committed first (its key's primary key refused ours), so the caller replays that one.
    static func unlessRaced<T>(_ idempotency: Idempotency?, _ create: () async throws -> T) async throws -> T? {
        do {
            return try await create()
        } catch let error as PostgresError where idempotency != nil && error.isUniqueViolation && error.constraint == "idempotency_keys_pkey" {
            return nil
        }
    }
}
