@testable import CareLedger
import Foundation
import HTTP
import Postgres
import Testing
import TestSupport

@Suite struct ConsentTests {
    @Test func consentsDecideWhoSeesAPatientFromTheNextRequestOnAndAreAnchored() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let hospitalOrg = try await api.createOrg("General", "hospital")
            let hospital = try await api.issueKey(hospitalOrg, "hospital").apiKey
            let insurerOrg = try await api.createOrg("Acme Health", "insurer")
            let insurer = try await api.issueKey(insurerOrg, "insurer").apiKey
            let stranger = try await api.issueKey(try await api.createOrg("Elsewhere", "hospital"), "hospital").apiKey
            let patientId = try #require(await api.call(.post, "/v1/patients", key: hospital, body: #"{"resourceType":"Patient","identifier":[{"system":"urn:n","value":"7"}]}"#)["id"])
            let patient = try await api.issueKey(hospitalOrg, "patient", extra: #","patientId":"\#(patientId)""#).apiKey
            let evidence = "sha256:" + String(repeating: "e", count: 64)

            #expect(await api.call(.get, "/v1/patients/\(patientId)", key: insurer).status == 404)

            // The patient grants insurers access to claims data for payment.
            let grant = await api.call(.post, "/v1/patients/\(patientId)/consents", key: patient,
                                       body: #"{"grantee":{"orgKind":"insurer"},"purposes":["HPAYMT"],"categories":["claim"]}"#)
            #expect(grant.status == 201 && grant["status"] == "active" && grant.json["seq"] is Int, "\(grant.text)")
            #expect(await api.call(.get, "/v1/patients/\(patientId)", key: insurer).status == 200)
            #expect(await api.call(.get, "/v1/patients/\(patientId)", key: insurer, headers: [("X-Purpose-Of-Use", "HRESCH")]).status == 404)

            // The custodian records a deny for this insurer: deny wins.
            let noEvidence = await api.call(.post, "/v1/patients/\(patientId)/consents", key: hospital,
                                            body: #"{"grantee":{"orgId":"\#(insurerOrg)"},"purposes":["HPAYMT"],"categories":["*"],"provision":"deny"}"#)
            #expect(noEvidence.status == 400 && noEvidence.text.contains("evidenceHash"))
            let denyBody = #"{"grantee":{"orgId":"\#(insurerOrg)"},"purposes":["HPAYMT"],"categories":["*"],"provision":"deny","evidenceHash":"\#(evidence)"}"#
            let deny = await api.call(.post, "/v1/patients/\(patientId)/consents", key: hospital, body: denyBody, headers: [("Idempotency-Key", "deny-1")])
            #expect(deny.status == 201)
            // A retried grant is the same consent; the key with another body is refused.
            let retried = await api.call(.post, "/v1/patients/\(patientId)/consents", key: hospital, body: denyBody, headers: [("Idempotency-Key", "deny-1")])
            #expect(retried.status == 201 && retried.text == deny.text, "\(retried.text)")
            #expect(await api.call(.post, "/v1/patients/\(patientId)/consents", key: hospital, body: denyBody + " ",
                                   headers: [("Idempotency-Key", "deny-1")]).status == 409)
            #expect(try await api.pool.query("SELECT count(*) AS n FROM consents")[0].decode("n", as: Int.self) == 2)
            #expect(await api.call(.get, "/v1/patients/\(patientId)", key: insurer).status == 404)

            // Strangers can do nothing with this patient's consents; revocation works at once.
            let denyId = try #require(deny["id"])
            #expect(await api.call(.post, "/v1/consents/\(denyId)/revoke", key: stranger).status == 404)
            #expect(await api.call(.get, "/v1/patients/\(patientId)/consents", key: stranger).status == 404)
            let revoked = await api.call(.post, "/v1/consents/\(denyId)/revoke", key: patient)
            #expect(revoked.status == 200 && revoked["status"] == "revoked" && revoked["revokedAt"] != nil)
            #expect(await api.call(.get, "/v1/patients/\(patientId)", key: insurer).status == 200)
            let list = await api.call(.get, "/v1/patients/\(patientId)/consents", key: patient)
            #expect(list.items.map { $0["status"] as? String } == ["active", "revoked"])

            // Another patient's key cannot touch this patient.
            let otherPatient = try #require(await api.call(.post, "/v1/patients", key: hospital, body: #"{"resourceType":"Patient","identifier":[{"system":"urn:n","value":"8"}]}"#)["id"])
            let otherKey = try await api.issueKey(hospitalOrg, "patient", extra: #","patientId":"\#(otherPatient)""#).apiKey
            #expect(await api.call(.get, "/v1/patients/\(patientId)/consents", key: otherKey).status == 404)

            // Grants and the revocation are in the ledger, and verify re-hashes them.
            try await api.ledger.sequencer.sequenceBatch()
            let types = try await api.pool.query("SELECT type FROM ledger_entries WHERE type LIKE 'consent.%' ORDER BY seq").all.map { try $0.decode("type", as: String.self) }
            #expect(types == ["consent.granted", "consent.granted", "consent.revoked"])
            await api.ledger.stop()
            let report = try await LedgerVerifier(pool: api.pool).verify()
            #expect(report.anchoredObjects["consent.granted"] == 2 && report.anchoredObjects["consent.revoked"] == 1)
            try await api.pool.withConnection { connection in
                try await connection.script("SET session_replication_role = replica")
                try await connection.query("UPDATE consents SET document = overlay(document placing 'X'::bytea from 10 for 1) WHERE id = \(denyId)")
                try await connection.script("RESET session_replication_role")
            }
            await #expect(throws: VerificationFailure.self) { _ = try await LedgerVerifier(pool: api.pool).verify() }
        }
    }

    @Test(arguments: [
        #"{"grantee":{},"purposes":["HPAYMT"],"categories":["claim"]}"#,
        #"{"grantee":{"orgId":"org_x","orgKind":"insurer"},"purposes":["HPAYMT"],"categories":["claim"]}"#,
        #"{"grantee":{"orgKind":"wizard"},"purposes":["HPAYMT"],"categories":["claim"]}"#,
        #"{"grantee":{"orgKind":"insurer"},"purposes":[],"categories":["claim"]}"#,
        #"{"grantee":{"orgKind":"insurer"},"purposes":["ETREAT"],"categories":["claim"]}"#,
        #"{"grantee":{"orgKind":"insurer"},"purposes":["HPAYMT"],"categories":["gossip"]}"#,
        #"{"grantee":{"orgKind":"insurer"},"purposes":["HPAYMT"],"categories":["claim"],"period":{"start":"2030-01-01T00:00:00Z","end":"2029-01-01T00:00:00Z"}}"#,
        #"{"grantee":{"orgKind":"insurer"},"purposes":["HPAYMT"],"categories":["claim"],"provision":"maybe"}"#,
    ])
    func badConsentsAre400s(body: String) async throws {
        try await APIHarness.with { api in
            let hospitalOrg = try await api.createOrg("General", "hospital")
            let hospital = try await api.issueKey(hospitalOrg, "hospital").apiKey
            let patientId = try #require(await api.call(.post, "/v1/patients", key: hospital, body: #"{"resourceType":"Patient","identifier":[{"system":"urn:n","value":"1"}]}"#)["id"])
            let patient = try await api.issueKey(hospitalOrg, "patient", extra: #","patientId":"\#(patientId)""#).apiKey
            let reply = await api.call(.post, "/v1/patients/\(patientId)/consents", key: patient, body: body)
            #expect(reply.status == 400, "\(reply.text)")
            #expect(try await api.pool.query("SELECT count(*) AS n FROM consents")[0].decode("n", as: Int.self) == 0)
        }
    }
}

@Suite struct FHIRConsentTests {
    @Test func officialConsentExamplesMapOrAreRefusedWithThePath() async throws {
        try await APIHarness.with { api in
            let orgA = try await api.createOrg("A", "hospital"), orgB = try await api.createOrg("B", "hospital")
            let hospitalA = try await api.issueKey(orgA, "hospital").apiKey
            let patientId = try #require(await api.call(.post, "/v1/patients", key: hospitalA, body: #"{"resourceType":"Patient","identifier":[{"system":"urn:n","value":"11"}]}"#)["id"])
            func fixture(_ name: String) throws -> String {
                String(decoding: try SharedFiles.data("fixtures/fhir/\(name)"), as: UTF8.self)
            }
            // The deny example, pointed at one of our organizations.
            let deny = try fixture("consent-example-notOrg.json").replacingOccurrences(of: "Organization/f001", with: "Organization/\(orgB)")
            let recorded = await api.call(.post, "/v1/patients/\(patientId)/consents", key: hospitalA, body: deny)
            #expect(recorded.status == 201, "\(recorded.text)")
            let list = await api.call(.get, "/v1/patients/\(patientId)/consents", key: hospitalA)
            let consent = try #require(list.items.first)
            #expect(consent["provision"] as? String == "deny" && (consent["grantee"] as? [String: String])?["orgId"] == orgB)
            #expect((consent["purposes"] as? [String])?.count == 5 && consent["categories"] as? [String] == ["*"])
            #expect((consent["evidenceHash"] as? String)?.hasPrefix("sha256:") == true)

            // As sent, the examples name organizations we do not know, or nest provisions: 422 with the path.
            let unknown = await api.call(.post, "/v1/patients/\(patientId)/consents", key: hospitalA, body: try fixture("consent-example-notOrg.json"))
            #expect(unknown.status == 422 && unknown.text.contains("provision.actor[0].reference"))
            let nested = await api.call(.post, "/v1/patients/\(patientId)/consents", key: hospitalA, body: try fixture("consent-example-Emergency.json"))
            #expect(nested.status == 422 && nested.text.contains("provision.provision"))
            let noActor = await api.call(.post, "/v1/patients/\(patientId)/consents", key: hospitalA, body: try fixture("consent-example.json"))
            #expect(noActor.status == 422 && noActor.text.contains("provision.actor"))
        }
    }
}
