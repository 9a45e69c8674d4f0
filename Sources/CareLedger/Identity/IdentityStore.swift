import FoundationEssentials
import Postgres

/// An organization as the API shows it.
struct Organization: Encodable {
    let id: String
    let name: String
    let kind: String
    let status: String
    let createdAt: String
    let updatedAt: String
}

/// An API key as the API shows it: never its secret or the secret's digest.
struct APIKey: Encodable {
    let keyId: String
    let orgId: String
    let role: String
    let label: String
    let patientId: String?
    let deviceId: String?
    let rateLimitPerSecond: Int?
    let expiresAt: String?
    let createdAt: String
    let revokedAt: String?
    /// `active`, `revoked` or `expired`.
    let status: String
    /// For a key bound to a TLS client certificate: that certificate's SHA-256.
    let certificateSha256: String?
}

/// What a new key is made of.
struct NewKey {
    let role: Role
    let label: String
    let patientId: String?
    let deviceId: String?
    let rateLimit: Int?
    let expiresAt: Date?
    /// Binds the key to a TLS client certificate instead of a secret.
    var certificateSHA256: String? = nil
}

/// The identity area's SQL: organizations, API keys, and resolving a presented key to a caller.
struct IdentityStore: Sendable {
    private static let organizationColumns: StaticString = "id, name, kind, status, created_at, updated_at"
    private static let keyColumns: StaticString = """
        id, org_id, role, label, patient_id, device_id, rate_limit, expires_at, created_at, revoked_at, certificate_sha256,
        CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN expires_at <= now() THEN 'expired' ELSE 'active' END AS status
        """

    // MARK: Callers

    /// The caller a token stands for, or nil if the key is unknown, revoked or expired, its secret
    /// does not match, or its organization is suspended. No cache: a revocation or suspension holds
    /// from the very next request on every instance.
    func caller(for token: APIKeyToken, on runner: some QueryRunner) async throws -> Caller? {
        let rows = try await runner.query("""
            SELECT k.id, k.org_id, k.role, k.secret_sha256, k.patient_id, k.device_id, k.rate_limit, k.expires_at,
                   o.name AS org_name, o.kind AS org_kind
            FROM api_keys k JOIN organizations o ON o.id = k.org_id
            WHERE k.id = \(token.keyId) AND k.secret_sha256 IS NOT NULL AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
              AND o.status = 'active'
            """)
        guard let row = rows.first else {
            // Compare anyway, so an unknown key costs the same time as a wrong secret.
            _ = token.matches(storedSHA256: [UInt8](repeating: 0, count: 32))
            return nil
        }
        guard token.matches(storedSHA256: try row.decode("secret_sha256", as: PostgresBytes.self).bytes) else { return nil }
        return try Self.caller(row)
    }

    /// The caller a verified TLS client certificate stands for, with the same conditions as a token.
    func caller(certificateSHA256: String, on runner: some QueryRunner) async throws -> Caller? {
        let rows = try await runner.query("""
            SELECT k.id, k.org_id, k.role, k.patient_id, k.device_id, k.rate_limit, k.expires_at, o.name AS org_name, o.kind AS org_kind
            FROM api_keys k JOIN organizations o ON o.id = k.org_id
            WHERE k.certificate_sha256 = \(certificateSHA256) AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
              AND o.status = 'active'
            """)
        return try rows.first.flatMap(Self.caller)
    }

    private static func caller(_ row: PostgresRow) throws -> Caller? {
        guard let role = Role(rawValue: try row.decode("role")), let kind = OrganizationKind(rawValue: try row.decode("org_kind")) else { return nil }
        return Caller(
            orgId: try row.decode("org_id"), orgName: try row.decode("org_name"), orgKind: kind, keyId: try row.decode("id"),
            role: role, patientId: try row.decode("patient_id", as: String?.self),
            deviceId: try row.decode("device_id", as: String?.self), expiresAt: try row.decode("expires_at", as: Date?.self),
            rateLimit: try row.decode("rate_limit", as: Int?.self))
    }

    // MARK: Organizations

    func createOrganization(name: String, kind: OrganizationKind, on runner: some QueryRunner) async throws -> Organization {
        let rows = try await runner.query("""
            INSERT INTO organizations (id, name, kind) VALUES (\(ResourceID.generate("org")), \(name), \(kind.rawValue))
            RETURNING \(sql: Self.organizationColumns)
            """)
        return try Self.organization(rows[0])
    }

    func organization(_ id: String, on runner: some QueryRunner) async throws -> Organization? {
        let rows = try await runner.query("SELECT \(sql: Self.organizationColumns) FROM organizations WHERE id = \(id)")
        return try rows.first.map(Self.organization)
    }

    /// Organizations after the cursor, by id (so by creation time); `only` restricts to one.
    func organizations(after: String?, limit: Int, only: String?, on runner: some QueryRunner) async throws -> [Organization] {
        let rows = try await runner.query("""
            SELECT \(sql: Self.organizationColumns) FROM organizations
            WHERE id > \(after ?? "") AND (\(only)::text IS NULL OR id = \(only))
            ORDER BY id LIMIT \(limit + 1)
            """)
        return try rows.all.map(Self.organization)
    }

    func setStatus(_ status: String, of id: String, on runner: some QueryRunner) async throws -> Organization? {
        let rows = try await runner.query("""
            UPDATE organizations SET status = \(status), updated_at = now() WHERE id = \(id)
            RETURNING \(sql: Self.organizationColumns)
            """)
        return try rows.first.map(Self.organization)
    }

    /// The platform organization, if bootstrap has created it.
    func platformOrganization(on runner: some QueryRunner) async throws -> Organization? {
        let rows = try await runner.query("SELECT \(sql: Self.organizationColumns) FROM organizations WHERE kind = 'platform'")
        return try rows.first.map(Self.organization)
    }

    // MARK: Keys

    /// Stores a new key for `orgId` and returns it with the token to show once.
    /// Creates the key, and its token: the only time the secret exists (unused, and not stored, for
    /// a key bound to a certificate).
    func createKey(_ key: NewKey, orgId: String, on runner: some QueryRunner) async throws -> (APIKey, APIKeyToken) {
        let (token, digest) = APIKeyToken.generate()
        let bound = key.certificateSHA256 != nil
        let rows = try await runner.query("""
            INSERT INTO api_keys (id, org_id, role, label, secret_sha256, certificate_sha256, patient_id, device_id, rate_limit, expires_at)
            VALUES (\(token.keyId), \(orgId), \(key.role.rawValue), \(key.label), \(bound ? nil : PostgresBytes(digest)), \(key.certificateSHA256),
                    \(key.patientId), \(key.deviceId), \(key.rateLimit), \(key.expiresAt))
            RETURNING \(sql: Self.keyColumns)
            """)
        return (try Self.apiKey(rows[0]), token)
    }

    func keys(of orgId: String, after: String?, limit: Int, on runner: some QueryRunner) async throws -> [APIKey] {
        let rows = try await runner.query("""
            SELECT \(sql: Self.keyColumns) FROM api_keys
            WHERE org_id = \(orgId) AND id > \(after ?? "") ORDER BY id LIMIT \(limit + 1)
            """)
        return try rows.all.map(Self.apiKey)
    }

    /// Revokes the key (a no-op when already revoked) and returns it; nil when `orgId` has no such key.
    func revokeKey(_ keyId: String, of orgId: String, on runner: some QueryRunner) async throws -> APIKey? {
        let rows = try await runner.query("""
            UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = \(keyId) AND org_id = \(orgId)
            RETURNING \(sql: Self.keyColumns)
            """)
        return try rows.first.map(Self.apiKey)
    }

    /// Whether any admin key can still be used.
    func hasActiveAdminKey(on runner: some QueryRunner) async throws -> Bool {
        let rows = try await runner.query("""
            SELECT 1 AS found FROM api_keys k JOIN organizations o ON o.id = k.org_id
            WHERE k.role = 'admin' AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
              AND o.status = 'active'
            LIMIT 1
            """)
        return !rows.isEmpty
    }

    /// Serializes bootstraps of one schema within the transaction, so two at once cannot both mint a
    /// first key (deployments in other schemas have first keys of their own, and need not wait).
    func lockForBootstrap(on runner: some QueryRunner) async throws {
        try await runner.query("SELECT pg_advisory_xact_lock(\(Self.bootstrapLock), hashtext(current_schema()))")
    }

    /// ASCII "boot".
    private static let bootstrapLock: Int32 = 0x626F_6F74

    // MARK: Rows

    private static func organization(_ row: PostgresRow) throws -> Organization {
        Organization(
            id: try row.decode("id"), name: try row.decode("name"), kind: try row.decode("kind"),
            status: try row.decode("status"), createdAt: Timestamp.format(try row.decode("created_at", as: Date.self)),
            updatedAt: Timestamp.format(try row.decode("updated_at", as: Date.self)))
    }

    private static func apiKey(_ row: PostgresRow) throws -> APIKey {
        APIKey(
            keyId: try row.decode("id"), orgId: try row.decode("org_id"), role: try row.decode("role"),
            label: try row.decode("label"), patientId: try row.decode("patient_id", as: String?.self),
            deviceId: try row.decode("device_id", as: String?.self), rateLimitPerSecond: try row.decode("rate_limit", as: Int?.self),
            expiresAt: try row.decode("expires_at", as: Date?.self).map(Timestamp.format),
            createdAt: Timestamp.format(try row.decode("created_at", as: Date.self)),
            revokedAt: try row.decode("revoked_at", as: Date?.self).map(Timestamp.format), status: try row.decode("status"),
            certificateSha256: try row.decode("certificate_sha256", as: String?.self))
    }
}
