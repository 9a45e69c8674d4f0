import CareLedger
import Foundation
import HTTP
import Postgres
import Testing
import TestSupport

@Suite struct PatientTests {
    static func fixture() throws -> String {
        String(decoding: try SharedFiles.data("fixtures/fhir/patient-example.json"), as: UTF8.self)
    }

    @Test func theOfficialExampleGoesThroughUnchangedAndIsSealedAtRest() async throws {
        try await APIHarness.with { api in
            let hospital = try await api.createOrg("General", "hospital")
            let key = try await api.issueKey(hospital, "hospital").apiKey
            let document = try Self.fixture()
            let created = await api.call(.post, "/v1/patients", key: key, body: document)
            #expect(created.status == 201, "\(created.text)")
            let id = try #require(created["id"])
            #expect(id.hasPrefix("pat_") && created.json["identifiers"] as? Int == 1)

            let read = await api.call(.get, "/v1/patients/\(id)", key: key)
            #expect(read.status == 200)
            #expect(read.text == #"{"id":"\#(id)","resource":"# + document + "}", "the resource comes back byte for byte")
            let found = await api.call(.get, "/v1/patients?identifier=urn:oid:1.2.36.146.595.217.0.1%7C12345", key: key)
            #expect(found.status == 200 && found["id"] == id)

            // Nothing readable at rest: no name, no identifier value, only sealed bytes and keyed hashes.
            let rows = try await api.pool.query("""
                SELECT (SELECT position('Chalmers'::bytea IN resource) FROM patients WHERE id = \(id)) AS name_at,
                       (SELECT count(*) FROM patient_identifiers WHERE position('12345'::bytea IN blind_index) > 0) AS clear_ids,
                       (SELECT length(blind_index) FROM patient_identifiers WHERE patient_id = \(id)) AS index_length
                """)
            #expect(try rows[0].decode("name_at", as: Int.self) == 0)
            #expect(try rows[0].decode("clear_ids", as: Int.self) == 0)
            #expect(try rows[0].decode("index_length", as: Int.self) == 32)
            let events = try await api.auditEvents(where: "patient_id = '\(id)'")
            #expect(events.count >= 3 && events.allSatisfy { $0["decision"] == "permit" })
        }
    }

    @Test func organizationsConvergeOnOnePatientAndStrangersSeeNothing() async throws {
        try await APIHarness.with { api in
            let first = try await api.issueKey(try await api.createOrg("First", "hospital"), "hospital").apiKey
            let secondOrg = try await api.createOrg("Second", "hospital")
            let second = try await api.issueKey(secondOrg, "hospital").apiKey
            let strangerOrg = try await api.createOrg("Stranger", "hospital")
            let stranger = try await api.issueKey(strangerOrg, "hospital").apiKey
            let id = try #require(await api.call(.post, "/v1/patients", key: first, body: try Self.fixture())["id"])

            // The stranger can neither read it nor find it.
            let unseen = await api.call(.get, "/v1/patients/\(id)", key: stranger)
            let unknown = await api.call(.get, "/v1/patients/pat_06h161e40yjs3kwrwyv5pywpzg", key: stranger)
            #expect(unseen.status == 404 && unknown.status == 404 && unseen.json.count == unknown.json.count)
            #expect(await api.call(.get, "/v1/patients?identifier=urn:oid:1.2.36.146.595.217.0.1%7C12345", key: stranger).status == 404)
            #expect(try await api.auditEvents(where: "decision = 'deny' AND actor_org = '\(strangerOrg)'").count == 3)

            // The second hospital registers the same person: 409 naming the patient, and it is now a custodian.
            let again = await api.call(.post, "/v1/patients", key: second, body: #"{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.36.146.595.217.0.1","value":"12345"},{"system":"urn:mrn:second","value":"A-77"}]}"#)
            #expect(again.status == 409 && again.text.contains(id))
            #expect(again.response.headers.first(name: "Location") == "/v1/patients/\(id)")
            #expect(await api.call(.get, "/v1/patients/\(id)", key: second).status == 200)
            // It adds its own MRN, which then finds the same patient; another patient's identifier is refused.
            #expect(await api.call(.post, "/v1/patients/\(id)/identifiers", key: second, body: #"{"system":"urn:mrn:second","value":"A-77"}"#).status == 201)
            #expect(await api.call(.get, "/v1/patients?identifier=urn:mrn:second%7CA-77", key: second)["id"] == id)
            let other = try #require(await api.call(.post, "/v1/patients", key: first, body: #"{"resourceType":"Patient","identifier":[{"system":"urn:x","value":"9"}]}"#)["id"])
            #expect(await api.call(.post, "/v1/patients/\(id)/identifiers", key: first, body: #"{"system":"urn:x","value":"9"}"#).status == 409)
            #expect(await api.call(.post, "/v1/patients/\(other)/identifiers", key: stranger, body: #"{"system":"urn:y","value":"1"}"#).status == 404)
        }
    }

    @Test func concurrentRegistrationsOfOnePersonMakeOnePatient() async throws {
        try await APIHarness.with { api in
            var keys: [String] = []
            for index in 0..<6 { keys.append(try await api.issueKey(try await api.createOrg("H\(index)", "hospital"), "hospital").apiKey) }
            let body = #"{"resourceType":"Patient","identifier":[{"system":"urn:national","value":"1900-01-01-42"}]}"#
            let replies = await withTaskGroup(of: APIHarness.Reply.self) { group in
                for key in keys { group.addTask { await api.call(.post, "/v1/patients", key: key, body: body) } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.filter { $0.status == 201 }.count == 1)
            #expect(replies.filter { $0.status == 409 }.count == 5)
            let id = try #require(replies.first { $0.status == 201 }?["id"])
            #expect(replies.filter { $0.status == 409 }.allSatisfy { $0.text.contains(id) })
            let count = try await api.pool.query("SELECT count(*) AS n FROM patients")[0].decode("n", as: Int.self)
            #expect(count == 1)
        }
    }

    @Test(arguments: [
        (#"{"resourceType":"Observation","identifier":[{"system":"s","value":"v"}]}"#, 422, "resourceType"),
        (#"{"resourceType":"Patient"}"#, 422, "identifier"),
        (#"{"resourceType":"Patient","identifier":[]}"#, 422, "identifier"),
        (#"{"resourceType":"Patient","identifier":[{"system":"s"}]}"#, 422, "identifier[0]"),
        (#"{"resourceType":"Patient","identifier":[{"system":"s","value":"v"}],"birthDate":"25/12/1974"}"#, 422, "birthDate"),
        (#"{"resourceType":"Patient","identifier":[{"system":"s","value":"v"}],"gender":"x"}"#, 422, "gender"),
        (#"{"resourceType":"Patient","#, 400, "not valid JSON"),
        (#"["Patient"]"#, 400, "not a JSON object"),
    ])
    func badPatientsAreRefusedAndChangeNothing(body: String, status: Int, mention: String) async throws {
        try await APIHarness.with { api in
            let key = try await api.issueKey(try await api.createOrg("General", "hospital"), "hospital").apiKey
            let reply = await api.call(.post, "/v1/patients", key: key, body: body)
            #expect(reply.status == status && reply.text.contains(mention), "\(reply.text)")
            #expect(try await api.pool.query("SELECT count(*) AS n FROM patients")[0].decode("n", as: Int.self) == 0)
        }
    }
}

@Suite struct PatientBreakGlassTests {
    @Test func aHospitalMayBreakTheGlassWithAReasonAndThePatientSeesIt() async throws {
        try await APIHarness.with { api in
            let orgA = try await api.createOrg("A", "hospital")
            let hospitalA = try await api.issueKey(orgA, "hospital").apiKey
            let er = try await api.issueKey(try await api.createOrg("ER", "hospital"), "hospital").apiKey
            let insurer = try await api.issueKey(try await api.createOrg("Payer", "insurer"), "insurer").apiKey
            let id = try #require(await api.call(.post, "/v1/patients", key: hospitalA, body: #"{"resourceType":"Patient","identifier":[{"system":"urn:n","value":"2"}]}"#)["id"])
            let patient = try await api.issueKey(orgA, "patient", extra: #","patientId":"\#(id)""#).apiKey
            #expect(await api.call(.get, "/v1/patients/\(id)", key: er).status == 404)
            #expect(await api.call(.get, "/v1/patients/\(id)", key: er, headers: [("X-Purpose-Of-Use", "ETREAT")]).status == 400)
            #expect(await api.call(.get, "/v1/patients/\(id)", key: insurer, headers: [("X-Purpose-Of-Use", "ETREAT"), ("X-Break-Glass-Reason", "Payment emergency, honestly, very urgent")]).status == 403)
            let urgent = await api.call(.get, "/v1/patients/\(id)", key: er, headers: [("X-Purpose-Of-Use", "ETREAT"), ("X-Break-Glass-Reason", "Unconscious patient, allergies needed now")])
            #expect(urgent.status == 200)
            let log = await api.call(.get, "/v1/me/access-log?limit=200", key: patient)
            #expect(log.items.contains { $0["breakTheGlass"] as? Bool == true && $0["purpose"] as? String == "ETREAT" })
        }
    }
}
