import CareLedger
import Foundation
import HTTP
import Testing

/// Calls every endpoint the server registers with a key of every role, with no key, and with a
/// revoked key, an expired key and the key of a suspended organization, and checks each answer
/// against the permission matrix. Later areas' endpoints join this table by being registered.
@Suite struct PermissionMatrixTests {
    /// The organization kind a key of each role lives in.
    static let homeKind: [Role: String] = [
        .admin: "platform", .hospital: "hospital", .insurer: "insurer", .national: "national", .pharmacy: "pharmacy",
        .manufacturer: "manufacturer", .distributor: "distributor", .auditor: "auditor", .patient: "hospital", .device: "hospital",
    ]

    struct Caller {
        let name: String
        let key: String?
        let org: String
        let role: Role?
    }

    @Test func everyEndpointAnswersEveryCallerAsTheMatrixSays() async throws {
        try await APIHarness.with { api in
            var orgs = ["platform": api.platformOrg]
            for kind in Set(Self.homeKind.values).subtracting(["platform"]) {
                orgs[kind] = try await api.createOrg("Org \(kind)", kind)
            }
            var callers: [Caller] = []
            for role in Role.allCases {
                let org = try #require(orgs[Self.homeKind[role]!])
                let extra = role == .patient ? #","patientId":"pat_06h161e40yjs3kwrwyv5pywpzg""#
                    : role == .device ? #","deviceId":"dev_06h161e40yjs3kwrwyv5pywpzg""# : ""
                let key = role == .admin ? api.adminKey : try await api.issueKey(org, role.rawValue, extra: extra).apiKey
                callers.append(Caller(name: role.rawValue, key: key, org: org, role: role))
            }
            let hospital = try #require(orgs["hospital"])
            let revoked = try await api.issueKey(hospital, "hospital")
            #expect(await api.call(.delete, "/v1/orgs/\(hospital)/keys/\(revoked.keyId)", key: api.adminKey).status == 200)
            let expired = try await api.issueKey(hospital, "hospital")
            try await api.pool.query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = \(expired.keyId)")
            let suspendedOrg = try await api.createOrg("Suspended", "hospital")
            let suspended = try await api.issueKey(suspendedOrg, "hospital")
            #expect(await api.call(.patch, "/v1/orgs/\(suspendedOrg)", key: api.adminKey, body: #"{"status":"suspended"}"#).status == 200)
            let unauthenticated = [
                Caller(name: "no key", key: nil, org: hospital, role: nil),
                Caller(name: "malformed key", key: "clk_not-a-key", org: hospital, role: nil),
                Caller(name: "revoked key", key: revoked.apiKey, org: hospital, role: nil),
                Caller(name: "expired key", key: expired.apiKey, org: hospital, role: nil),
                Caller(name: "suspended organization", key: suspended.apiKey, org: suspendedOrg, role: nil),
            ]

            let protected = api.routes.filter { $0.action != nil }
            #expect(protected.count >= 9)
            var forbiddenCalls = 0
            for route in protected {
                let action = try #require(route.action)
                for caller in callers + unauthenticated {
                    // Ids in the path are the caller's own (the admin's: a hospital's), so only the
                    // role decides; a fresh key stands in for {keyId}, so a permitted DELETE revokes
                    // nothing that matters.
                    var path = route.template.replacingOccurrences(of: "{orgId}", with: caller.role == .admin ? hospital : caller.org)
                    if path.contains("{keyId}") {
                        path = path.replacingOccurrences(of: "{keyId}", with: try await api.issueKey(hospital, "hospital").keyId)
                    }
                    let body = route.method == .post || route.method == .patch ? "{}" : nil
                    let reply = await api.call(route.method, path, key: caller.key, body: body)
                    let label = "\(route.method) \(route.template) as \(caller.name): \(reply.status) \(reply.text)"
                    guard let role = caller.role else {
                        #expect(reply.status == 401 && reply.errorCode == "unauthenticated", "\(label)")
                        #expect(reply.response.headers.first(name: "WWW-Authenticate")?.hasPrefix("Bearer") == true, "\(label)")
                        continue
                    }
                    if PermissionMatrix.permits(role, action) {
                        #expect(![401, 403].contains(reply.status) && reply.status < 500, "\(label)")
                    } else {
                        #expect(reply.status == 403 && reply.errorCode == "forbidden", "\(label)")
                        forbiddenCalls += 1
                    }
                }
            }
            #expect(forbiddenCalls > 0)
            let denials = try await api.auditEvents(where: "decision = 'deny' AND reason = 'role not permitted'")
            #expect(denials.count == forbiddenCalls, "every 403 leaves a deny audit event")
            let failedLogins = try await api.auditEvents(where: "reason = 'unauthenticated'")
            #expect(failedLogins.count == protected.count * unauthenticated.count)
        }
    }

    @Test func adminsSeeNoPatientDataAndAuditorsNoAdministration() {
        #expect(!PermissionMatrix.permits(.admin, .auditRead))
        #expect(!PermissionMatrix.permits(.auditor, .keysCreate))
        #expect(PermissionMatrix.roles(for: .auditRead) == [.national, .auditor])
    }

    @Test func readmeCarriesTheMatrix() throws {
        let readme = try String(contentsOf: RepositoryPaths.root.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains(PermissionMatrix.markdownTable), "README.md must contain PermissionMatrix.markdownTable exactly:\n\(PermissionMatrix.markdownTable)")
    }
}
