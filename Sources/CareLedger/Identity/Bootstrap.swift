import Postgres

/// The first admin key: what `careledger admin bootstrap` creates and prints once.
public struct BootstrapResult: Sendable, Encodable {
    public let orgId: String
    public let keyId: String
    public let apiKey: String
}

/// Why bootstrap refused.
public enum BootstrapError: Error, Equatable, CustomStringConvertible {
    case alreadyBootstrapped

    public var description: String {
        "an admin key already exists; issue further keys with it (deploy/admin/issue-key.sh), or revoke every admin key first"
    }
}

/// Creates the platform organization (once) and an admin key, unless a usable admin key exists.
/// Having lost or revoked every admin key, an operator with database access can run it again:
/// database access already is the higher power.
public enum Bootstrap {
    public static func run(pool: PostgresPool) async throws -> BootstrapResult {
        let store = IdentityStore()
        return try await pool.withTransaction { transaction in
            try await store.lockForBootstrap(on: transaction)
            guard try await !store.hasActiveAdminKey(on: transaction) else { throw BootstrapError.alreadyBootstrapped }
            let organization: Organization
            if let platform = try await store.platformOrganization(on: transaction) {
                organization = platform
            } else {
                organization = try await store.createOrganization(name: "CareLedger platform", kind: .platform, on: transaction)
            }
            let key = NewKey(role: .admin, label: "bootstrap", patientId: nil, deviceId: nil, rateLimit: nil, expiresAt: nil)
            let (created, token) = try await store.createKey(key, orgId: organization.id, on: transaction)
            try await AuditStore().record(AuditEvent(
                requestId: "cli-bootstrap", actorOrg: organization.id, keyId: created.keyId, role: .admin,
                action: Action.keysCreate.rawValue, resourceType: "api_key", resourceId: created.keyId, decision: .permit,
                reason: "first admin key, created by careledger admin bootstrap"), on: transaction)
            return BootstrapResult(orgId: organization.id, keyId: created.keyId, apiKey: token.text)
        }
    }
}
