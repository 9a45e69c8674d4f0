import CareLedger
import Crypto
import Foundation
import HTTP
import Postgres
import Testing

@Suite struct IdentityTests {
    @Test func adminCreatesOrganizationsAndKeysAndTheKeyWorksAtOnce() async throws {
        try await APIHarness.with { api in
            let created = await api.call(.post, "/v1/orgs", key: api.adminKey, body: #"{"name":"  St Mary's  ","kind":"hospital"}"#)
            #expect(created.status == 201)
            #expect(created["name"] == "St Mary's" && created["kind"] == "hospital" && created["status"] == "active")
            let org = try #require(created["id"])
            #expect(org.hasPrefix("org_") && org.count == 30)

            let issued = await api.call(.post, "/v1/orgs/\(org)/keys", key: api.adminKey,
                                        body: #"{"role":"hospital","label":"EHR","expiresAt":"2099-01-01T00:00:00Z"}"#)
            #expect(issued.status == 201)
            let apiKey = try #require(issued["apiKey"])
            let keyId = try #require(issued["keyId"])
            #expect(apiKey.hasPrefix("clk_\(keyId)_") && issued["role"] == "hospital" && issued["expiresAt"] == "2099-01-01T00:00:00.000Z")

            let me = await api.call(.get, "/v1/me", key: apiKey)
            #expect(me.status == 200 && me["orgId"] == org && me["role"] == "hospital" && me["keyId"] == keyId && me["orgName"] == "St Mary's")

            // Only a digest of the secret is stored, and no answer after creation carries it.
            let secret = String(apiKey.split(separator: "_").last!)
            let stored = try await api.pool.query("SELECT secret_sha256 FROM api_keys WHERE id = \(keyId)")
            #expect(try stored[0].decode("secret_sha256", as: PostgresBytes.self).bytes == SHA256.digest(Array(secret.utf8)))
            let listing = await api.call(.get, "/v1/orgs/\(org)/keys", key: api.adminKey)
            #expect(listing.status == 200 && listing.items.count == 1)
            #expect(!listing.text.contains(secret) && !listing.text.contains("sha256") && !listing.text.contains("apiKey"))
            #expect(!me.text.contains(secret))

            // Every change left a permit event in the trail.
            let events = try await api.auditEvents(where: "decision = 'permit' AND action IN ('orgs.create', 'keys.create')")
            #expect(events.map { $0["resource_id"] ?? nil }.suffix(2) == [org, keyId])
        }
    }

    @Test func revocationAndSuspensionHoldFromTheVeryNextRequest() async throws {
        try await APIHarness.with { api in
            let org = try await api.createOrg("Acme", "insurer")
            let key = try await api.issueKey(org, "insurer")
            #expect(await api.call(.get, "/v1/me", key: key.apiKey).status == 200)
            #expect(await api.call(.patch, "/v1/orgs/\(org)", key: api.adminKey, body: #"{"status":"suspended"}"#).status == 200)
            #expect(await api.call(.get, "/v1/me", key: key.apiKey).status == 401)
            #expect(await api.call(.patch, "/v1/orgs/\(org)", key: api.adminKey, body: #"{"status":"active"}"#).status == 200)
            #expect(await api.call(.get, "/v1/me", key: key.apiKey).status == 200)
            let revoked = await api.call(.delete, "/v1/orgs/\(org)/keys/\(key.keyId)", key: api.adminKey)
            #expect(revoked.status == 200 && revoked["status"] == "revoked" && revoked["revokedAt"] != nil)
            let reply = await api.call(.get, "/v1/me", key: key.apiKey)
            #expect(reply.status == 401 && reply.text.contains("A valid API key is required."))
            // Revoking again is harmless and keeps the first revocation time.
            let again = await api.call(.delete, "/v1/orgs/\(org)/keys/\(key.keyId)", key: api.adminKey)
            #expect(again.status == 200 && again["revokedAt"] == revoked["revokedAt"])
        }
    }

    @Test func unauthenticatedAnswersAreIdenticalWhateverTheReason() async throws {
        try await APIHarness.with { api in
            let org = try await api.createOrg("Acme", "insurer")
            let key = try await api.issueKey(org, "insurer")
            let wrongSecret = String(key.apiKey.dropLast()) + (key.apiKey.hasSuffix("0") ? "1" : "0")
            var bodies = Set<String>()
            for presented in [nil, "", "clk_", "clk_bad", "clk__", "clk_key__x", "Basic abc", wrongSecret,
                              "clk_key_06h161e40yjs3kwrwyv5pywpzg_" + String(repeating: "a", count: 52)] {
                let reply = await api.call(.get, "/v1/me", key: presented)
                #expect(reply.status == 401)
                #expect(reply.response.headers.first(name: "WWW-Authenticate") == #"Bearer realm="careledger""#)
                bodies.insert(reply.text.replacingOccurrences(of: #""requestId":"[^"]*""#, with: "", options: .regularExpression))
            }
            #expect(bodies.count == 1)
            // Failed attempts are on the trail with the key id they named, never the secret.
            let failures = try await api.auditEvents(where: "reason = 'unauthenticated'")
            #expect(failures.count == 9)
            #expect(failures.contains { $0["key_id"] == key.keyId && $0["client_address"] == "192.0.2.10" })
            #expect(!failures.contains { ($0["whole"] ?? "")?.contains(String(wrongSecret.split(separator: "_").last!)) == true })
        }
    }

    @Test func anotherOrganizationsObjectsAnswer404AndLeaveADenyEvent() async throws {
        try await APIHarness.with { api in
            let mine = try await api.createOrg("Mine", "hospital")
            let theirs = try await api.createOrg("Theirs", "hospital")
            let key = try await api.issueKey(mine, "hospital")
            let foreign = await api.call(.get, "/v1/orgs/\(theirs)", key: key.apiKey)
            let unknown = await api.call(.get, "/v1/orgs/org_06h161e40yjs3kwrwyv5pywpzg", key: key.apiKey)
            #expect(foreign.status == 404 && unknown.status == 404)
            #expect(foreign.errorCode == "not_found" && foreign.json.count == unknown.json.count)
            let denials = try await api.auditEvents(where: "decision = 'deny' AND resource_id = '\(theirs)'")
            #expect(denials.count == 1 && denials[0]["actor_org"] == mine && denials[0]["action"] == "orgs.read")

            // Lists hold only the caller's own organization.
            let list = await api.call(.get, "/v1/orgs", key: key.apiKey)
            #expect(list.items.map { $0["id"] as? String } == [mine])
            #expect(await api.call(.get, "/v1/orgs/\(mine)", key: key.apiKey).status == 200)
        }
    }

    @Test(arguments: [
        ("/v1/orgs", #"{"name":"x"}"#, "Missing field 'kind'."),
        ("/v1/orgs", #"{"name":"x","kind":"hospital","extra":1}"#, "Unknown field 'extra'."),
        ("/v1/orgs", #"{"name":"","kind":"hospital"}"#, "'name' must not be empty."),
        ("/v1/orgs", #"{"name":"x","kind":"platform"}"#, "'kind' must be one of"),
        ("/v1/orgs", #"{"name":7,"kind":"hospital"}"#, "Field 'name' has the wrong type."),
        ("/v1/orgs", #"{"name":"a\u0007b","kind":"hospital"}"#, "control characters"),
        ("/v1/orgs", #"["name"]"#, "The body is not a JSON object."),
        ("/v1/orgs", #"{"name":"x","kind":"hospital""#, "The body is not a JSON object."),
        ("KEYS", #"{"role":"insurer"}"#, "cannot hold 'insurer' keys"),
        ("KEYS", #"{"role":"wizard"}"#, "'role' must be one of"),
        ("KEYS", #"{"role":"patient"}"#, "needs 'patientId'"),
        ("KEYS", #"{"role":"hospital","patientId":"pat_06h161e40yjs3kwrwyv5pywpzg"}"#, "Only a 'patient' key takes 'patientId'."),
        ("KEYS", #"{"role":"patient","patientId":"bob"}"#, "'patientId' must be an id"),
        ("KEYS", #"{"role":"hospital","expiresAt":"2020-01-01T00:00:00Z"}"#, "must be in the future"),
        ("KEYS", #"{"role":"hospital","expiresAt":"tomorrow"}"#, "RFC 3339"),
        ("KEYS", #"{"role":"hospital","rateLimitPerSecond":0}"#, "'rateLimitPerSecond' must be"),
        ("PATCH", #"{"status":"gone"}"#, "'status' must be 'active' or 'suspended'."),
    ])
    func badBodiesAreClear400sThatChangeNothing(path: String, body: String, message: String) async throws {
        try await APIHarness.with { api in
            let org = try await api.createOrg("Target", "hospital")
            let before = try await api.pool.query("SELECT (SELECT count(*) FROM organizations) + (SELECT count(*) FROM api_keys) AS n")
            let method: HTTPMethod = path == "PATCH" ? .patch : .post
            let target = path == "KEYS" ? "/v1/orgs/\(org)/keys" : path == "PATCH" ? "/v1/orgs/\(org)" : path
            let reply = await api.call(method, target, key: api.adminKey, body: body)
            #expect(reply.status == 400 && reply.errorCode == "bad_request")
            #expect(reply.text.contains(message), "\(reply.text)")
            let after = try await api.pool.query("SELECT (SELECT count(*) FROM organizations) + (SELECT count(*) FROM api_keys) AS n")
            #expect(try before[0].decode("n", as: Int.self) == after[0].decode("n", as: Int.self))
            let status = await api.call(.get, "/v1/orgs/\(org)", key: api.adminKey)
            #expect(status["status"] == "active")
        }
    }

    @Test func nonJSONBodiesAre415AndThePlatformCannotBeSuspended() async throws {
        try await APIHarness.with { api in
            let form = await api.call(.post, "/v1/orgs", key: api.adminKey, headers: [("Content-Type", "application/x-www-form-urlencoded")])
            #expect(form.status == 415 && form.errorCode == "unsupported_media_type")
            let platform = await api.call(.patch, "/v1/orgs/\(api.platformOrg)", key: api.adminKey, body: #"{"status":"suspended"}"#)
            #expect(platform.status == 409 && platform.errorCode == "conflict")
            #expect(await api.call(.get, "/v1/me", key: api.adminKey).status == 200)
        }
    }

    @Test func listsArePagedWithACursor() async throws {
        try await APIHarness.with { api in
            var created: [String] = []
            for index in 0..<5 { created.append(try await api.createOrg("Org \(index)", "pharmacy")) }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let reply = await api.call(.get, "/v1/orgs?limit=2" + (cursor.map { "&after=\($0)" } ?? ""), key: api.adminKey)
                #expect(reply.status == 200 && reply.items.count <= 2)
                seen += reply.items.compactMap { $0["id"] as? String }
                cursor = reply["next"]
            } while cursor != nil
            #expect(seen == [api.platformOrg] + created, "ids are time-ordered, so pages follow creation order")
            #expect(await api.call(.get, "/v1/orgs?limit=0", key: api.adminKey).status == 400)
            #expect(await api.call(.get, "/v1/orgs?limit=201", key: api.adminKey).status == 400)
        }
    }

    @Test func purposeOfUseIsCheckedAndRecorded() async throws {
        try await APIHarness.with { api in
            let bad = await api.call(.get, "/v1/orgs", key: api.adminKey, headers: [("X-Purpose-Of-Use", "CURIOSITY")])
            #expect(bad.status == 400 && bad.text.contains("X-Purpose-Of-Use must be one of"))
            let good = await api.call(.get, "/v1/orgs", key: api.adminKey, headers: [("X-Purpose-Of-Use", "HOPERAT")])
            #expect(good.status == 200)
            let events = try await api.auditEvents(where: "action = 'orgs.list'")
            #expect(events.last?["purpose"] == "HOPERAT")
        }
    }
}
