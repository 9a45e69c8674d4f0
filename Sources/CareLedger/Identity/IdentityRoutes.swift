import FoundationEssentials
import HTTP
import Postgres

/// `/v1/me`, `/v1/orgs` and `/v1/orgs/{orgId}/keys`: who am I, organizations, API keys.
enum IdentityRoutes {
    static func register(in api: inout APIRouteBuilder) {
        let store = IdentityStore()
        let audit = api.access.audit
        let pool = api.access.pool

        api.on(.get, "/v1/me", .meRead) { context in
            let caller = context.caller
            return try JSONBody.response(.ok, Me(
                orgId: caller.orgId, orgName: caller.orgName, orgKind: caller.orgKind.rawValue, keyId: caller.keyId,
                role: caller.role.rawValue, patientId: caller.patientId, deviceId: caller.deviceId,
                expiresAt: caller.expiresAt.map(Timestamp.format)))
        }

        api.on(.post, "/v1/orgs", .orgsCreate) { context in
            let body = try JSONBody.decode(CreateOrganization.self, from: context.request, fields: ["name", "kind"])
            let name = try validName(body.name, field: "name", required: true)
            guard let kind = OrganizationKind(rawValue: body.kind), kind != .platform else {
                let kinds = OrganizationKind.allCases.filter { $0 != .platform }.map(\.rawValue).joined(separator: ", ")
                throw APIError.badRequest("'kind' must be one of \(kinds).")
            }
            let organization = try await pool.withTransaction { transaction in
                let organization = try await store.createOrganization(name: name, kind: kind, on: transaction)
                try await audit.record(context.permitted("organization", organization.id), on: transaction)
                return organization
            }
            return try JSONBody.response(.created, organization)
        }

        api.on(.get, "/v1/orgs", .orgsList) { context in
            let pagination = try Pagination(try context.request.query())
            // Only the platform sees every organization; everyone else sees their own.
            let only = context.caller.role == .admin ? nil : context.caller.orgId
            let organizations = try await store.organizations(after: pagination.after, limit: pagination.limit, only: only, on: pool)
            try await audit.record(context.permitted("organization"), on: pool)
            return try JSONBody.response(.ok, pagination.page(organizations, cursor: \.id) { $0 })
        }

        api.on(.get, "/v1/orgs/{orgId}", .orgsRead) { context in
            let organization = try await visibleOrganization(context, store: store, on: pool)
            try await audit.record(context.permitted("organization", organization.id), on: pool)
            return try JSONBody.response(.ok, organization)
        }

        api.on(.patch, "/v1/orgs/{orgId}", .orgsUpdate) { context in
            let orgId = try context.request.parameters.require("orgId", as: String.self)
            let body = try JSONBody.decode(UpdateOrganization.self, from: context.request, fields: ["status"])
            guard ["active", "suspended"].contains(body.status) else {
                throw APIError.badRequest("'status' must be 'active' or 'suspended'.")
            }
            let organization = try await pool.withTransaction { transaction in
                guard let existing = try await store.organization(orgId, on: transaction) else {
                    throw Denial.notVisible("organization", orgId, reason: "no such organization")
                }
                if existing.kind == OrganizationKind.platform.rawValue, body.status == "suspended" {
                    throw Denial.conflict("The platform organization cannot be suspended.", "organization", orgId)
                }
                guard let updated = try await store.setStatus(body.status, of: orgId, on: transaction) else {
                    throw Denial.notVisible("organization", orgId, reason: "no such organization")
                }
                try await audit.record(context.permitted("organization", orgId, reason: "status set to \(body.status)"), on: transaction)
                return updated
            }
            return try JSONBody.response(.ok, organization)
        }

        api.on(.post, "/v1/orgs/{orgId}/keys", .keysCreate) { context in
            let organization = try await visibleOrganization(context, store: store, on: pool)
            let body = try JSONBody.decode(CreateKey.self, from: context.request, fields: CreateKey.fields)
            let key = try body.validated(for: organization)
            let (created, token) = try await pool.withTransaction { transaction in
                let created = try await store.createKey(key, orgId: organization.id, on: transaction)
                try await audit.record(context.permitted("api_key", created.0.keyId), on: transaction)
                return created
            }
            return try JSONBody.response(.created, CreatedKey(key: created, apiKey: key.certificateSHA256 == nil ? token.text : nil))
        }

        api.on(.get, "/v1/orgs/{orgId}/keys", .keysList) { context in
            let organization = try await visibleOrganization(context, store: store, on: pool)
            let pagination = try Pagination(try context.request.query())
            let keys = try await store.keys(of: organization.id, after: pagination.after, limit: pagination.limit, on: pool)
            try await audit.record(context.permitted("api_key"), on: pool)
            return try JSONBody.response(.ok, pagination.page(keys, cursor: \.keyId) { $0 })
        }

        api.on(.delete, "/v1/orgs/{orgId}/keys/{keyId}", .keysRevoke) { context in
            let organization = try await visibleOrganization(context, store: store, on: pool)
            let keyId = try context.request.parameters.require("keyId", as: String.self)
            let key = try await pool.withTransaction { transaction in
                guard let key = try await store.revokeKey(keyId, of: organization.id, on: transaction) else {
                    throw Denial.notVisible("api_key", keyId, reason: "no such key in this organization")
                }
                try await audit.record(context.permitted("api_key", keyId, reason: "revoked"), on: transaction)
                return key
            }
            return try JSONBody.response(.ok, key)
        }
    }

    /// The path's organization if the caller may see it: admins see all, others only their own.
    /// Anything else answers 404, exactly like an id that does not exist.
    private static func visibleOrganization(_ context: APIContext, store: IdentityStore, on runner: some QueryRunner) async throws -> Organization {
        let orgId = try context.request.parameters.require("orgId", as: String.self)
        guard context.caller.role == .admin || context.caller.orgId == orgId else {
            throw Denial.notVisible("organization", orgId)
        }
        guard let organization = try await store.organization(orgId, on: runner) else {
            throw Denial.notVisible("organization", orgId, reason: "no such organization")
        }
        return organization
    }

    /// A display name or label: trimmed, at most 200 characters, no control characters.
    static func validName(_ text: String?, field: String, required: Bool) throws(HTTPError) -> String {
        let trimmed = (text ?? "").trimmingWhitespace()
        guard !required || !trimmed.isEmpty else { throw APIError.badRequest("'\(field)' must not be empty.") }
        guard trimmed.count <= 200 else { throw APIError.badRequest("'\(field)' must be at most 200 characters.") }
        guard !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw APIError.badRequest("'\(field)' must not contain control characters.")
        }
        return trimmed
    }
}

private struct Me: Encodable {
    let orgId: String
    let orgName: String
    let orgKind: String
    let keyId: String
    let role: String
    let patientId: String?
    let deviceId: String?
    let expiresAt: String?
}

private struct CreateOrganization: Decodable {
    let name: String
    let kind: String
}

private struct UpdateOrganization: Decodable {
    let status: String
}

private struct CreateKey: Decodable {
    static let fields: Set<String> = ["role", "label", "expiresAt", "patientId", "deviceId", "rateLimitPerSecond", "certificateSha256"]

    let role: String
    let label: String?
    let expiresAt: String?
    let patientId: String?
    let deviceId: String?
    let rateLimitPerSecond: Int?
    let certificateSha256: String?

    /// Checks the request against the organization it is for.
    func validated(for organization: Organization) throws(HTTPError) -> NewKey {
        guard let role = Role(rawValue: role) else {
            throw APIError.badRequest("'role' must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        let kind = OrganizationKind(rawValue: organization.kind)
        guard let kind, kind.keyRoles.contains(role) else {
            let allowed = kind?.keyRoles.map(\.rawValue).joined(separator: ", ") ?? "none"
            throw APIError.badRequest("A \(organization.kind) organization cannot hold '\(role.rawValue)' keys; allowed: \(allowed).")
        }
        let label = try IdentityRoutes.validName(label, field: "label", required: false)
        try Self.checkBinding(patientId, field: "patientId", prefix: "pat", required: role == .patient, role: role)
        try Self.checkBinding(deviceId, field: "deviceId", prefix: "dev", required: role == .device, role: role)
        if let rate = rateLimitPerSecond, !(1...100_000).contains(rate) {
            throw APIError.badRequest("'rateLimitPerSecond' must be an integer from 1 to 100000.")
        }
        var expiry: Date?
        if let expiresAt {
            guard let date = Timestamp.parse(expiresAt) else {
                throw APIError.badRequest("'expiresAt' must be an RFC 3339 date-time such as 2027-01-31T00:00:00Z.")
            }
            guard date > Date() else { throw APIError.badRequest("'expiresAt' must be in the future.") }
            expiry = date
        }
        var certificate: String?
        if let text = certificateSha256 {
            // As `openssl x509 -fingerprint -sha256` prints it (colons, upper case) or as plain hex.
            let hex = text.filter { $0 != ":" }.lowercased()
            guard hex.count == 64, hex.allSatisfy({ $0.isHexDigit }) else {
                throw APIError.badRequest("'certificateSha256' must be the SHA-256 of the client certificate: 64 hex digits, colons allowed.")
            }
            certificate = hex
        }
        return NewKey(role: role, label: label, patientId: patientId, deviceId: deviceId, rateLimit: rateLimitPerSecond, expiresAt: expiry,
                      certificateSHA256: certificate)
    }

    private static func checkBinding(_ value: String?, field: String, prefix: String, required: Bool, role: Role) throws(HTTPError) {
        switch (value, required) {
        case (nil, true):
            throw APIError.badRequest("A '\(role.rawValue)' key needs '\(field)'.")
        case (.some, false):
            throw APIError.badRequest("Only a '\(prefix == "pat" ? "patient" : "device")' key takes '\(field)'.")
        case (.some(let id), true) where !ResourceID.isWellFormed(id, prefix: prefix):
            throw APIError.badRequest("'\(field)' must be an id like \(prefix)_...")
        default:
            return
        }
    }
}

private struct CreatedKey: Encodable {
    let key: APIKey
    /// The bearer token; nil for a key bound to a client certificate.
    let apiKey: String?

    private enum CodingKeys: String, CodingKey { case apiKey }

    /// The key's fields, plus the token, in one object.
    func encode(to encoder: any Encoder) throws {
        try key.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(apiKey, forKey: .apiKey)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }
}
