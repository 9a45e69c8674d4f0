import Crypto
import Postgres

/// `Idempotency-Key` on a create: a retry with the same key and the same request answers with the
/// resource the first one created; the same key with a different request is refused (409). Keys are
/// per organization.
struct Idempotency: Sendable {
    let key: String
    /// SHA-256 of the method, path and body, so a key reused on another endpoint is a different request.
    let requestHash: String

    init(key: String, method: String, path: String, body: [UInt8]) throws(DomainError) {
        guard (1...200).contains(key.utf8.count), key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .invalid("Idempotency-Key must be 1-200 visible ASCII characters.")
        }
        self.key = key
        requestHash = "sha256:" + SHA256.hexDigest(Array("\(method) \(path)\n".utf8) + body)
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

/// The only SQL on `idempotency_keys`.
struct IdempotencyStore: Sendable {
    /// The resource an earlier request with this key created: nil if none, a conflict if that
    /// request was a different one.
    func earlierResource(_ idempotency: Idempotency, orgId: String, on runner: some QueryRunner) async throws -> String? {
        let rows = try await runner.query("""
            SELECT request_hash, resource_id FROM idempotency_keys WHERE org_id = \(orgId) AND key = \(idempotency.key)
            """)
        guard let row = rows.first else { return nil }
        guard try row.decode("request_hash", as: String.self) == idempotency.requestHash else {
            throw DomainError.conflict("This Idempotency-Key was used with a different request.")
        }
        return try row.decode("resource_id", as: String.self)
    }

    /// `create` once per key: a request whose key already created a resource answers with `replay`
    /// of it, also when a concurrent request with the key committed while this one ran (whatever
    /// `create` then failed with: the key's primary key, or a state the winner had changed).
    func once<T>(_ idempotency: Idempotency?, orgId: String, on pool: PostgresPool,
                 replay: (String) async throws -> T, create: () async throws -> T) async throws -> T {
        guard let idempotency else { return try await create() }
        if let earlier = try await earlierResource(idempotency, orgId: orgId, on: pool) { return try await replay(earlier) }
        do {
            return try await create()
        } catch {
            guard let earlier = try? await earlierResource(idempotency, orgId: orgId, on: pool) else { throw error }
            return try await replay(earlier)
        }
    }

    /// Records the key of a resource created in `transaction`, for writes that are not one statement;
    /// `answer` keeps what the answer says that the resource's rows do not.
    func record(_ idempotency: Idempotency?, orgId: String, resourceId: String, answer: [UInt8]? = nil,
                on transaction: PostgresTransaction) async throws {
        guard let idempotency else { return }
        guard let answer else {
            _ = try await transaction.query("\(Self.insert([(orgId, idempotency, resourceId)]))")
            return
        }
        _ = try await transaction.query("""
            INSERT INTO idempotency_keys (org_id, key, request_hash, resource_id, answer)
            VALUES (\(orgId), \(idempotency.key), \(idempotency.requestHash), \(resourceId), \(PostgresBytes(answer)))
            """)
    }

    /// The answer recorded with a key, when its write kept one.
    func answer(_ idempotency: Idempotency, orgId: String, on runner: some QueryRunner) async throws -> [UInt8]? {
        try await runner.query("SELECT answer FROM idempotency_keys WHERE org_id = \(orgId) AND key = \(idempotency.key)")
            .first?.decode("answer", as: PostgresBytes?.self)?.bytes
    }

    /// The insert of one key per resource created, for the write that creates them to compose as a
    /// CTE (so the key commits with its resource, or neither does). A reused key fails on the primary key.
    static func insert(_ keys: [(orgId: String, idempotency: Idempotency?, resourceId: String)]) -> PostgresFragment {
        """
        INSERT INTO idempotency_keys (org_id, key, request_hash, resource_id)
        SELECT o, k, h, r FROM unnest(\(PostgresArray(keys.map { Optional($0.orgId) }))::text[], \(PostgresArray(keys.map { $0.idempotency?.key }))::text[],
                                      \(PostgresArray(keys.map { $0.idempotency?.requestHash }))::text[], \(PostgresArray(keys.map { Optional($0.resourceId) }))::text[]) AS u(o, k, h, r)
        WHERE k IS NOT NULL
        """
    }
}
