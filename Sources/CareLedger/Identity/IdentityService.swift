import FoundationEssentials
import Postgres

/// Organizations and their API keys: the rules (who sees which organization, which roles an
/// organization's kind may hold, what a key may be bound to), the transactions, and the audit
/// events. Only the platform's admins create and change; organizations see their own record.
struct IdentityService: Sendable {
    let pool: PostgresPool
    let store = IdentityStore()
    let audit = AuditStore()

    func createOrganization(name: String, kind: String, _ call: CallContext) async throws -> Organization {
        let name = try DisplayName.validated(name, field: "name", required: true)
        guard let kind = OrganizationKind(rawValue: kind), kind != .platform else {
            let kinds = OrganizationKind.allCases.filter { $0 != .platform }.map { $0.rawValue }.joined(separator: ", ")
            throw DomainError.invalid("'kind' must be one of \(kinds).")
        }
        return try await pool.withTransaction { transaction in
            let organization = try await store.createOrganization(name: name, kind: kind, on: transaction)
            try await audit.record(call.permitted("organization", organization.id), on: transaction)
            return organization
        }
    }

    /// Organizations after the cursor: every one for the platform, the caller's own for anyone else.
    func organizations(_ pagination: Pagination, _ call: CallContext) async throws -> [Organization] {
        let only = call.caller.role == .admin ? nil : call.caller.orgId
        let organizations = try await store.organizations(after: pagination.after, limit: pagination.limit, only: only, on: pool)
        try await audit.record(call.permitted("organization"), on: pool)
        return organizations
    }

    func organization(_ orgId: String, _ call: CallContext) async throws -> Organization {
        let organization = try await visibleOrganization(orgId, call)
        try await audit.record(call.permitted("organization", organization.id), on: pool)
        return organization
    }

    func setStatus(of orgId: String, to status: String, _ call: CallContext) async throws -> Organization {
        guard ["active", "suspended"].contains(status) else { throw DomainError.invalid("'status' must be 'active' or 'suspended'.") }
        return try await pool.withTransaction { transaction in
            guard let existing = try await store.organization(orgId, on: transaction) else {
                throw Denial.notVisible("organization", orgId, reason: "no such organization")
            }
            if existing.kind == OrganizationKind.platform.rawValue, status == "suspended" {
                throw Denial.conflict("The platform organization cannot be suspended.", "organization", orgId)
            }
            guard let updated = try await store.setStatus(status, of: orgId, on: transaction) else {
                throw Denial.notVisible("organization", orgId, reason: "no such organization")
            }
            try await audit.record(call.permitted("organization", orgId, reason: "status set to \(status)"), on: transaction)
            return updated
        }
    }

    /// A new key for the organization, and its bearer token (nil for a key bound to a client certificate).
    func createKey(in orgId: String, _ request: KeyRequest, _ call: CallContext) async throws -> (key: APIKey, token: String?) {
        let organization = try await visibleOrganization(orgId, call)
        let key = try request.validated(for: organization)
        let (created, token) = try await pool.withTransaction { transaction in
            let created = try await store.createKey(key, orgId: organization.id, on: transaction)
            try await audit.record(call.permitted("api_key", created.0.keyId), on: transaction)
            return created
        }
        return (created, key.certificateSHA256 == nil ? token.text : nil)
    }

    func keys(of orgId: String, _ pagination: Pagination, _ call: CallContext) async throws -> [APIKey] {
        let organization = try await visibleOrganization(orgId, call)
        let keys = try await store.keys(of: organization.id, after: pagination.after, limit: pagination.limit, on: pool)
        try await audit.record(call.permitted("api_key"), on: pool)
        return keys
    }

    func revokeKey(_ keyId: String, of orgId: String, _ call: CallContext) async throws -> APIKey {
        let organization = try await visibleOrganization(orgId, call)
        return try await pool.withTransaction { transaction in
            guard let key = try await store.revokeKey(keyId, of: organization.id, on: transaction) else {
                throw Denial.notVisible("api_key", keyId, reason: "no such key in this organization")
            }
            try await audit.record(call.permitted("api_key", keyId, reason: "revoked"), on: transaction)
            return key
        }
    }

    /// The organization if the caller may see it: admins see all, others only their own. Anything
    /// else answers like an id that does not exist.
    private func visibleOrganization(_ orgId: String, _ call: CallContext) async throws -> Organization {
        guard call.caller.role == .admin || call.caller.orgId == orgId else {
            throw Denial.notVisible("organization", orgId)
        }
        guard let organization = try await store.organization(orgId, on: pool) else {
            throw Denial.notVisible("organization", orgId, reason: "no such organization")
        }
        return organization
    }
}

/// A key as asked for, before it is checked against its organization.
struct KeyRequest: Decodable, Sendable {
    static let fields: Set<String> = ["role", "label", "expiresAt", "patientId", "deviceId", "rateLimitPerSecond", "certificateSha256"]

    let role: String
    let label: String?
    let expiresAt: String?
    let patientId: String?
    let deviceId: String?
    let rateLimitPerSecond: Int?
    let certificateSha256: String?

    /// The key, if `organization` may hold it.
    func validated(for organization: Organization) throws(DomainError) -> NewKey {
        guard let role = Role(rawValue: role) else {
            throw .invalid("'role' must be one of \(Role.allCases.map { $0.rawValue }.joined(separator: ", ")).")
        }
        let kind = OrganizationKind(rawValue: organization.kind)
        guard let kind, kind.keyRoles.contains(role) else {
            let allowed = kind?.keyRoles.map { $0.rawValue }.joined(separator: ", ") ?? "none"
            throw .invalid("A \(organization.kind) organization cannot hold '\(role.rawValue)' keys; allowed: \(allowed).")
        }
        let label = try DisplayName.validated(label, field: "label", required: false)
        try Self.checkBinding(patientId, field: "patientId", prefix: "pat", required: role == .patient, role: role)
        try Self.checkBinding(deviceId, field: "deviceId", prefix: "dev", required: role == .device, role: role)
        if let rate = rateLimitPerSecond, !(1...100_000).contains(rate) {
            throw .invalid("'rateLimitPerSecond' must be an integer from 1 to 100000.")
        }
        var expiry: Date?
        if let expiresAt {
            guard let date = Timestamp.parse(expiresAt) else {
                throw .invalid("'expiresAt' must be an RFC 3339 date-time such as 2027-01-31T00:00:00Z.")
            }
            guard date > Date() else { throw .invalid("'expiresAt' must be in the future.") }
            expiry = date
        }
        var certificate: String?
        if let text = certificateSha256 {
            // As `openssl x509 -fingerprint -sha256` prints it (colons, upper case) or as plain hex.
            let hex = text.filter { $0 != ":" }.lowercased()
            guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit }) else {
                throw .invalid("'certificateSha256' must be the SHA-256 of the client certificate: 64 hex digits, colons allowed.")
            }
            certificate = hex
        }
        return NewKey(role: role, label: label, patientId: patientId, deviceId: deviceId, rateLimit: rateLimitPerSecond, expiresAt: expiry,
                      certificateSHA256: certificate)
    }

    private static func checkBinding(_ value: String?, field: String, prefix: String, required: Bool, role: Role) throws(DomainError) {
        switch (value, required) {
        case (nil, true):
            throw .invalid("A '\(role.rawValue)' key needs '\(field)'.")
        case (.some, false):
            throw .invalid("Only a '\(prefix == "pat" ? "patient" : "device")' key takes '\(field)'.")
        case (.some(let id), true) where !ResourceID.isWellFormed(id, prefix: prefix):
            throw .invalid("'\(field)' must be an id like \(prefix)_...")
        default:
            return
        }
    }
}
