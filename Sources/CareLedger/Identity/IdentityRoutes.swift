import HTTP

/// `/v1/me`, `/v1/orgs` and `/v1/orgs/{orgId}/keys`: who am I, organizations, API keys.
enum IdentityRoutes {
    static func register(in api: inout APIRouteBuilder) {
        let service = IdentityService(pool: api.access.pool)

        api.on(.get, "/v1/me", .meRead) { context in
            try JSONBody.response(.ok, Me(context.caller))
        }

        api.on(.post, "/v1/orgs", .orgsCreate) { context in
            let body = try JSONBody.decode(CreateOrganization.self, from: context.request, fields: ["name", "kind"])
            return try JSONBody.response(.created, try await service.createOrganization(name: body.name, kind: body.kind, context.call))
        }

        api.on(.get, "/v1/orgs", .orgsList) { context in
            let pagination = try Pagination(try context.query())
            let organizations = try await service.organizations(pagination, context.call)
            return try JSONBody.response(.ok, pagination.page(organizations, cursor: \.id) { $0 })
        }

        api.on(.get, "/v1/orgs/{orgId}", .orgsRead) { context in
            try JSONBody.response(.ok, try await service.organization(try context.parameter("orgId"), context.call))
        }

        api.on(.patch, "/v1/orgs/{orgId}", .orgsUpdate) { context in
            let orgId: String = try context.parameter("orgId")
            let body = try JSONBody.decode(UpdateOrganization.self, from: context.request, fields: ["status"])
            return try JSONBody.response(.ok, try await service.setStatus(of: orgId, to: body.status, context.call))
        }

        api.on(.post, "/v1/orgs/{orgId}/keys", .keysCreate) { context in
            let orgId: String = try context.parameter("orgId")
            let body = try JSONBody.decode(KeyRequest.self, from: context.request, fields: KeyRequest.fields)
            let created = try await service.createKey(in: orgId, body, context.call)
            return try JSONBody.response(.created, CreatedKey(key: created.key, apiKey: created.token))
        }

        api.on(.get, "/v1/orgs/{orgId}/keys", .keysList) { context in
            let pagination = try Pagination(try context.query())
            let keys = try await service.keys(of: try context.parameter("orgId"), pagination, context.call)
            return try JSONBody.response(.ok, pagination.page(keys, cursor: \.keyId) { $0 })
        }

        api.on(.delete, "/v1/orgs/{orgId}/keys/{keyId}", .keysRevoke) { context in
            try JSONBody.response(.ok, try await service.revokeKey(try context.parameter("keyId"), of: try context.parameter("orgId"), context.call))
        }
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

    init(_ caller: Caller) {
        orgId = caller.orgId
        orgName = caller.orgName
        orgKind = caller.orgKind.rawValue
        keyId = caller.keyId
        role = caller.role.rawValue
        patientId = caller.patientId
        deviceId = caller.deviceId
        expiresAt = caller.expiresAt.map(Timestamp.format)
    }
}

private struct CreateOrganization: Decodable {
    let name: String
    let kind: String
}

private struct UpdateOrganization: Decodable {
    let status: String
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
