@testable import CareLedger
import Crypto
import Foundation
import HTTP
import Ledger
import Postgres
import Testing
import TestSupport

@Suite struct ExchangeTests {
    struct World {
        let api: APIHarness
        let hospitalA: String
        let hospitalB: String
        let orgB: String
        let outsider: String
        let patientKey: String
        let patientId: String
    }

    private func world(_ api: APIHarness) async throws -> World {
        let orgA = try await api.createOrg("A", "hospital"), orgB = try await api.createOrg("B", "hospital")
        let hospitalA = try await api.issueKey(orgA, "hospital").apiKey
        let hospitalB = try await api.issueKey(orgB, "hospital").apiKey
        let outsider = try await api.issueKey(try await api.createOrg("C", "hospital"), "hospital").apiKey
        let patientId = try #require(await api.call(.post, "/v1/patients", key: hospitalA, body: #"{"resourceType":"Patient","identifier":[{"system":"urn:n","value":"5"}]}"#)["id"])
        let patientKey = try await api.issueKey(orgA, "patient", extra: #","patientId":"\#(patientId)""#).apiKey
        return World(api: api, hospitalA: hospitalA, hospitalB: hospitalB, orgB: orgB, outsider: outsider, patientKey: patientKey, patientId: patientId)
    }

    private func send(_ world: World, document: String, purpose: String = "TREAT", category: String = "clinical-note", reason: String? = nil,
                      key: String? = nil, idempotencyKey: String? = nil) async -> APIHarness.Reply {
        let reasonField = reason.map { #","reason":"\#($0)""# } ?? ""
        let body = #"{"to":"\#(world.orgB)","patient":"\#(world.patientId)","purpose":"\#(purpose)","category":"\#(category)","document":\#(document)\#(reasonField)}"#
        return await world.api.call(.post, "/v1/exchanges", key: key ?? world.hospitalA, body: body,
                                    headers: idempotencyKey.map { [("Idempotency-Key", $0)] } ?? [])
    }

    @Test func concurrentSendsAreBatchedYetEachKeepsItsOwnOutcome() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let world = try await world(api)
            let consent = await api.call(.post, "/v1/patients/\(world.patientId)/consents", key: world.patientKey,
                                         body: #"{"grantee":{"orgId":"\#(world.orgB)"},"purposes":["TREAT"],"categories":["*"]}"#)
            #expect(consent.status == 201)
            let document = #"{"resourceType":"Observation","status":"final","code":{"text":"pulse"}}"#
            // Twelve distinct sends and eight racing on one idempotency key, all at once: the racing
            // ones land in batches together, fail there on the key, and are retried alone.
            let replies = await withTaskGroup(of: (raced: Bool, reply: APIHarness.Reply).self) { group in
                for index in 0..<12 {
                    group.addTask { (false, await send(world, document: document, idempotencyKey: "distinct-\(index)")) }
                }
                for _ in 0..<8 {
                    group.addTask { (true, await send(world, document: document, idempotencyKey: "raced")) }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.allSatisfy { $0.reply.status == 201 }, "\(replies.map(\.reply.text))")
            let distinctIds = replies.filter { !$0.raced }.compactMap { $0.reply["id"] }
            let racedIds = replies.filter(\.raced).compactMap { $0.reply["id"] }
            #expect(Set(distinctIds).count == 12 && racedIds.count == 8 && Set(racedIds).count == 1, "\(distinctIds) \(racedIds)")
            #expect(Set(distinctIds).isDisjoint(with: racedIds))
            let stored = try await api.pool.query("SELECT count(*) AS n FROM exchanges")
            #expect(try stored.first?.decode("n", as: Int.self) == 13)
            let queued = try await api.pool.query("SELECT count(*) AS n FROM exchanges e JOIN ledger_entries l ON l.queue_id = e.sent_queue_id")
            #expect(try queued.first?.decode("n", as: Int.self) == 13, "every stored exchange is anchored")
        }
    }

    @Test func consentDecidesAndTheDocumentArrivesWithProofOfDelivery() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let world = try await world(api)
            let bundle = String(decoding: try SharedFiles.data("fixtures/fhir/bundle-example.json"), as: UTF8.self)

            let refused = await send(world, document: bundle)
            #expect(refused.status == 403 && refused.errorCode == "consent_denied")
            #expect(try await api.auditEvents(where: "decision = 'deny' AND action = 'exchanges.send'").count == 1)

            let consent = await api.call(.post, "/v1/patients/\(world.patientId)/consents", key: world.patientKey,
                                         body: #"{"grantee":{"orgId":"\#(world.orgB)"},"purposes":["TREAT"],"categories":["clinical-note"]}"#)
            #expect(consent.status == 201)
            let sent = await send(world, document: bundle, idempotencyKey: "send-1")
            #expect(sent.status == 201, "\(sent.text)")
            let id = try #require(sent["id"])
            let canonical = try JCS.canonicalize(json: Array(bundle.utf8))
            #expect(sent["documentHash"] == "sha256:" + SHA256.hexDigest(canonical), "the hash is SHA-256 of the document's JCS form")
            #expect((sent.json["ledger"] as? [String: Any])?["seq"] is Int)

            // Retries with the key return the same exchange; another body with it is refused.
            let again = await send(world, document: bundle, idempotencyKey: "send-1")
            #expect(again.status == 201 && again["id"] == id)
            #expect(await send(world, document: #"{"resourceType":"Observation"}"#, idempotencyKey: "send-1").status == 409)
            #expect(try await api.pool.query("SELECT count(*) AS n FROM exchanges")[0].decode("n", as: Int.self) == 1)

            // Only sender and recipient see it; the recipient's read anchors delivery.
            #expect(await api.call(.get, "/v1/exchanges/\(id)", key: world.outsider).status == 404)
            let received = await api.call(.get, "/v1/exchanges/\(id)", key: world.hospitalB)
            #expect(received.status == 200 && received["receivedAt"] != nil)
            let document = try JSONSerialization.data(withJSONObject: try #require(received.json["document"]))
            #expect(try JCS.canonicalize(json: Array(document)) == canonical)
            #expect(await api.call(.get, "/v1/exchanges/\(id)", key: world.hospitalA).status == 200)
            try await api.ledger.sequencer.sequenceBatch()
            let types = try await api.pool.query("SELECT type FROM ledger_entries WHERE ref = \(id) ORDER BY seq").all.map { try $0.decode("type", as: String.self) }
            #expect(types == ["exchange.sent", "exchange.received"])

            // Sealed at rest: no clinical content in the table.
            let clear = try await api.pool.query("SELECT count(*) AS n FROM exchanges WHERE position('Bundle'::bytea IN document) > 0")
            #expect(try clear[0].decode("n", as: Int.self) == 0)
        }
    }

    @Test func revocationBeforeTheFirstReadAnswersConsentRevoked() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let world = try await world(api)
            let consent = await api.call(.post, "/v1/patients/\(world.patientId)/consents", key: world.patientKey,
                                         body: #"{"grantee":{"orgKind":"hospital"},"purposes":["TREAT"],"categories":["lab"]}"#)
            let sent = await send(world, document: #"{"resourceType":"Observation","status":"final"}"#, category: "lab")
            #expect(sent.status == 201)
            #expect(await api.call(.post, "/v1/consents/\(consent["id"] ?? "")/revoke", key: world.patientKey).status == 200)
            let read = await api.call(.get, "/v1/exchanges/\(sent["id"] ?? "")", key: world.hospitalB)
            #expect(read.status == 403 && read.errorCode == "consent_revoked")
        }
    }

    @Test func breakingTheGlassIsAllowedToHospitalsFlaggedAndAudited() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let world = try await world(api)
            let short = await send(world, document: #"{"resourceType":"Observation"}"#, purpose: "ETREAT", reason: "urgent")
            #expect(short.status == 400)
            let sent = await send(world, document: #"{"resourceType":"Observation"}"#, purpose: "ETREAT", reason: "Unconscious patient in the emergency room")
            #expect(sent.status == 201)
            let view = await api.call(.get, "/v1/exchanges/\(sent["id"] ?? "")", key: world.hospitalB)
            #expect(view.status == 200 && view.json["breakGlass"] as? Bool == true)
            let events = try await api.auditEvents(where: "action = 'exchanges.send' AND decision = 'permit'")
            #expect(events.last?["reason"] == "break-the-glass" && events.last?["purpose"] == "ETREAT")
        }
    }

    /// Every official FHIR R4 example in the fixtures, Bundles with every kind of entry among them
    /// (`bundle-transaction.json` carries a Parameters), goes through unchanged; what R4 does not
    /// define is refused at its path.
    @Test func everyFixtureGoesThroughAndOnlyNonR4TypesAreRefused() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let world = try await world(api)
            let consent = await api.call(.post, "/v1/patients/\(world.patientId)/consents", key: world.patientKey,
                                         body: #"{"grantee":{"orgId":"\#(world.orgB)"},"purposes":["TREAT"],"categories":["*"]}"#)
            #expect(consent.status == 201)
            let fixtures = try SharedFiles.files(under: "fixtures/fhir", extension: "json").filter { !$0.path.contains("/terminology/") }
            #expect(fixtures.count >= 30 && fixtures.contains { $0.lastPathComponent == "bundle-transaction.json" })
            for file in fixtures {
                let document = String(decoding: try Data(contentsOf: file), as: UTF8.self)
                let sent = await send(world, document: document, category: "lab")
                #expect(sent.status == 201, "\(file.lastPathComponent): \(sent.text)")
                #expect(sent["documentHash"] == "sha256:" + SHA256.hexDigest(try JCS.canonicalize(json: Array(document.utf8))), "\(file.lastPathComponent)")
            }
            #expect(FHIRDocument.r4ResourceTypes.count == 146 && FHIRDocument.r4ResourceTypes.contains("Parameters"))
            for (type, path) in [("SubscriptionTopic", "document.resourceType"), ("Transport", "document.resourceType"),
                                 ("Resource", "document.resourceType"), ("DomainResource", "document.resourceType"), ("patient", "document.resourceType")] {
                let refused = await send(world, document: #"{"resourceType":"\#(type)"}"#)
                #expect(refused.status == 422 && refused.text.contains(path) && refused.text.contains("is not a FHIR R4 resource type"), "\(type): \(refused.text)")
            }
            let nested = await send(world, document: #"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Parameters"}},{"resource":{"resourceType":"Citation"}}]}"#)
            #expect(nested.status == 422 && nested.text.contains("document.entry[1].resource.resourceType"), "R4B's Citation is not R4: \(nested.text)")
        }
    }

    @Test func strangersLearnNothingAndBadDocumentsAreRefused() async throws {
        try await APIHarness.with { api in
            let world = try await world(api)
            let stranger = await send(world, document: #"{"resourceType":"Observation"}"#, key: world.outsider)
            #expect(stranger.status == 404)
            #expect(await send(world, document: #"{"resourceType":"Spaceship"}"#).status == 422)
            let nested = await send(world, document: #"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Nope"}}]}"#)
            #expect(nested.status == 422 && nested.text.contains("document.entry[0].resource.resourceType"))
            #expect(await send(world, document: #"[1]"#).status == 422)
            let invalid = await api.call(.post, "/v1/exchanges", key: world.hospitalA, body: #"{"to":"#)
            #expect(invalid.status == 400)
            #expect(await api.call(.post, "/v1/exchanges", key: world.hospitalA, body: #"{"to":"org_x","extra":1}"#).status == 400)
            #expect(try await api.pool.query("SELECT count(*) AS n FROM exchanges")[0].decode("n", as: Int.self) == 0)
        }
    }
}

@Suite struct ExchangeProofTests {
    @Test func bothPartiesGetReceiptsAndVerifyReHashesSealedDocuments() async throws {
        let keys = try PatientKeys.forTests()
        try await APIHarness.with(runningLedger: true, patientKeys: keys) { api in
            let orgA = try await api.createOrg("A", "hospital"), orgB = try await api.createOrg("B", "hospital")
            let hospitalA = try await api.issueKey(orgA, "hospital").apiKey, hospitalB = try await api.issueKey(orgB, "hospital").apiKey
            let patientId = try #require(await api.call(.post, "/v1/patients", key: hospitalA, body: #"{"resourceType":"Patient","identifier":[{"system":"urn:n","value":"6"}]}"#)["id"])
            _ = await api.call(.post, "/v1/patients/\(patientId)/consents", key: hospitalA,
                               body: #"{"grantee":{"orgId":"\#(orgB)"},"purposes":["TREAT"],"categories":["lab"],"evidenceHash":"sha256:\#(String(repeating: "a", count: 64))"}"#)
            let sent = await api.call(.post, "/v1/exchanges", key: hospitalA,
                                      body: #"{"to":"\#(orgB)","patient":"\#(patientId)","purpose":"TREAT","category":"lab","document":{"resourceType":"Observation","status":"final"}}"#)
            let id = try #require(sent["id"])
            #expect(await api.call(.get, "/v1/exchanges/\(id)", key: hospitalB).status == 200)
            try await api.ledger.sequencer.sequenceBatch()
            let proof = await api.call(.get, "/v1/exchanges/\(id)/proof", key: hospitalB)
            #expect(proof.status == 200)
            let receipts = try JSONDecoder().decode(ReceiptPage.self, from: Data(proof.response.body)).items
            #expect(receipts.count == 2)
            for receipt in receipts {
                let entry = try receipt.verify(publicKey: api.ledger.signer.key.publicKey)
                #expect(entry["ref"] == .string(id))
            }
            #expect(receipts.first.map { (try? JSONParser.parse(Array($0.entry.utf8)))?["hash"] } == .string(sent["documentHash"] ?? ""))

            await api.ledger.stop()
            let report = try await LedgerVerifier(pool: api.pool, patientKeys: keys).verify()
            #expect(report.documentsRehashed && report.anchoredObjects["exchange.sent"] == 1 && report.anchoredObjects["exchange.received"] == 1)
            try await api.pool.withConnection { connection in
                // Flip a bit: a fixed byte written over ciphertext already matches it one time in 256.
                try await connection.query("UPDATE exchanges SET document = set_byte(document, 19, get_byte(document, 19) # 1) WHERE id = \(id)")
            }
            #expect(try await LedgerVerifier(pool: api.pool).verify().documentsRehashed == false, "without the key the sealed bytes are not opened")
            let failure = await #expect(throws: VerificationFailure.self) { _ = try await LedgerVerifier(pool: api.pool, patientKeys: keys).verify() }
            #expect(failure?.table == "exchanges" && failure?.detail.contains("altered") == true)
        }
    }

    private struct ReceiptPage: Decodable {
        let items: [Receipt]
    }
}

@Suite struct RecordTests {
    @Test func theRecordIndexFollowsConsentAndThePatientSeesWhoLooked() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let orgA = try await api.createOrg("A", "hospital"), orgB = try await api.createOrg("B", "hospital")
            let insurerOrg = try await api.createOrg("Payer", "insurer")
            let hospitalA = try await api.issueKey(orgA, "hospital").apiKey, hospitalB = try await api.issueKey(orgB, "hospital").apiKey
            let insurer = try await api.issueKey(insurerOrg, "insurer").apiKey
            let patientId = try #require(await api.call(.post, "/v1/patients", key: hospitalA, body: #"{"resourceType":"Patient","identifier":[{"system":"urn:n","value":"9"}]}"#)["id"])
            let patient = try await api.issueKey(orgA, "patient", extra: #","patientId":"\#(patientId)""#).apiKey
            _ = await api.call(.post, "/v1/patients/\(patientId)/consents", key: patient,
                               body: #"{"grantee":{"orgKind":"hospital"},"purposes":["TREAT"],"categories":["lab","mental-health"]}"#)
            for category in ["lab", "mental-health"] {
                let sent = await api.call(.post, "/v1/exchanges", key: hospitalA,
                                          body: #"{"to":"\#(orgB)","patient":"\#(patientId)","purpose":"TREAT","category":"\#(category)","document":{"resourceType":"Observation"}}"#)
                #expect(sent.status == 201)
            }
            _ = await api.call(.post, "/v1/patients/\(patientId)/consents", key: patient,
                               body: #"{"grantee":{"orgKind":"insurer"},"purposes":["HPAYMT"],"categories":["lab"]}"#)

            // B sees both (they were sent to it); the insurer sees only what its consent covers.
            let forB = await api.call(.get, "/v1/patients/\(patientId)/record", key: hospitalB)
            #expect(forB.items.count == 2 && forB.items.allSatisfy { $0["ledgerSeq"] is Int })
            let forInsurer = await api.call(.get, "/v1/patients/\(patientId)/record", key: insurer)
            #expect(forInsurer.items.map { $0["category"] as? String } == ["lab"])
            let outsiderOrg = try await api.createOrg("C", "pharmacy")
            let outsider = try await api.issueKey(outsiderOrg, "pharmacy").apiKey
            #expect(await api.call(.get, "/v1/patients/\(patientId)/record", key: outsider).status == 404)

            // The patient sees its whole index, and who looked, denials included.
            let own = await api.call(.get, "/v1/me/record", key: patient)
            #expect(own.items.count == 2)
            let log = await api.call(.get, "/v1/me/access-log?limit=200", key: patient)
            let organizations = Set(log.items.compactMap { $0["organization"] as? String })
            #expect(organizations.isSuperset(of: [orgA, orgB, insurerOrg, outsiderOrg]))
            #expect(log.items.contains { $0["organization"] as? String == outsiderOrg && $0["decision"] as? String == "deny" })
            #expect(await api.call(.get, "/v1/me/access-log", key: hospitalA).status == 403)
        }
    }
}

@Suite struct ExchangeBoxTests {
    @Test func inboxesFollowTheLedgerAndLongPollsWakeOnArrival() async throws {
        try await APIHarness.with(runningLedger: true) { api in
            let orgA = try await api.createOrg("A", "hospital"), orgB = try await api.createOrg("B", "hospital")
            let hospitalA = try await api.issueKey(orgA, "hospital").apiKey, hospitalB = try await api.issueKey(orgB, "hospital").apiKey
            let patientId = try #require(await api.call(.post, "/v1/patients", key: hospitalA, body: #"{"resourceType":"Patient","identifier":[{"system":"urn:n","value":"3"}]}"#)["id"])
            _ = await api.call(.post, "/v1/patients/\(patientId)/consents", key: hospitalA,
                               body: #"{"grantee":{"orgId":"\#(orgB)"},"purposes":["TREAT"],"categories":["*"],"evidenceHash":"sha256:\#(String(repeating: "b", count: 64))"}"#)
            func send() async -> String? {
                await api.call(.post, "/v1/exchanges", key: hospitalA,
                               body: #"{"to":"\#(orgB)","patient":"\#(patientId)","purpose":"TREAT","category":"lab","document":{"resourceType":"Observation"}}"#)["id"]
            }
            let first = try #require(await send())
            let inbox = await api.call(.get, "/v1/exchanges?box=inbox", key: hospitalB)
            #expect(inbox.items.map { $0["exchangeId"] as? String } == [first])
            let cursor = try #require(inbox["cursor"])
            #expect(await api.call(.get, "/v1/exchanges?box=outbox", key: hospitalA).items.count == 1)
            #expect(await api.call(.get, "/v1/exchanges?box=outbox", key: hospitalB).items.isEmpty)

            // A long poll from the cursor returns as soon as the next exchange is sequenced.
            let clock = ContinuousClock()
            let started = clock.now
            async let polled = api.call(.get, "/v1/exchanges?box=inbox&after=\(cursor)&wait=10", key: hospitalB)
            try await waitUntil("the long poll waits for a batch") { api.ledger.batches.waiting > 0 }
            let second = try #require(await send())
            let reply = await polled
            #expect(reply.items.map { $0["exchangeId"] as? String } == [second])
            #expect(clock.now - started < .seconds(5))
            let empty = await api.call(.get, "/v1/exchanges?box=inbox&after=\(reply["cursor"] ?? "")&wait=1", key: hospitalB)
            // Nothing new for B: the cursor stays, or moves past entries that were not B's.
            #expect(empty.items.isEmpty && (Int(empty["cursor"] ?? "") ?? -1) >= (Int(reply["cursor"] ?? "") ?? .max))
            #expect(await api.call(.get, "/v1/exchanges?box=spam", key: hospitalB).status == 400)
            #expect(await api.call(.get, "/v1/exchanges?box=inbox&wait=31", key: hospitalB).status == 400)
        }
    }
}

@Suite struct ErasureTests {
    @Test func erasureMakesContentUnreadableAndTheLedgerStillVerifies() async throws {
        let keys = try PatientKeys.forTests()
        try await APIHarness.with(runningLedger: true, patientKeys: keys) { api in
            let orgA = try await api.createOrg("A", "hospital"), orgB = try await api.createOrg("B", "hospital")
            let hospitalA = try await api.issueKey(orgA, "hospital").apiKey, hospitalB = try await api.issueKey(orgB, "hospital").apiKey
            let national = try await api.issueKey(try await api.createOrg("Health Ministry", "national"), "national").apiKey
            let patientId = try #require(await api.call(.post, "/v1/patients", key: hospitalA, body: #"{"resourceType":"Patient","identifier":[{"system":"urn:n","value":"4"}]}"#)["id"])
            let sent = await api.call(.post, "/v1/exchanges", key: hospitalA,
                                      body: #"{"to":"\#(orgB)","patient":"\#(patientId)","purpose":"ETREAT","category":"lab","document":{"resourceType":"Observation"},"reason":"Emergency admission, patient unconscious"}"#)
            let exchangeId = try #require(sent["id"])
            #expect(await api.call(.get, "/v1/exchanges/\(exchangeId)", key: hospitalB).status == 200)

            #expect(await api.call(.post, "/v1/patients/\(patientId)/erase", key: national, body: #"{"reason":"short"}"#).status == 400)
            #expect(await api.call(.post, "/v1/patients/\(patientId)/erase", key: hospitalA, body: #"{"reason":"Court order 2026-117"}"#).status == 403)
            #expect(await api.call(.post, "/v1/patients/pat_06h161e40yjs3kwrwyv5pywpzg/erase", key: national, body: #"{"reason":"Court order 2026-117"}"#).status == 404)
            let erased = await api.call(.post, "/v1/patients/\(patientId)/erase", key: national, body: #"{"reason":"Court order 2026-117"}"#)
            #expect(erased.status == 200 && erased["status"] == "erased" && erased.json["alreadyErased"] as? Bool == false)
            #expect(await api.call(.post, "/v1/patients/\(patientId)/erase", key: national, body: #"{"reason":"Court order 2026-117"}"#).json["alreadyErased"] as? Bool == true)

            let patient = await api.call(.get, "/v1/patients/\(patientId)", key: hospitalA)
            #expect(patient.status == 410 && patient.errorCode == "erased")
            #expect(await api.call(.get, "/v1/exchanges/\(exchangeId)", key: hospitalB).status == 410)
            try await api.ledger.sequencer.sequenceBatch()
            await api.ledger.stop()
            let report = try await LedgerVerifier(pool: api.pool, patientKeys: keys).verify()
            #expect(report.erasedPatients == 1 && report.anchoredObjects["exchange.sent"] == 1)
        }
    }
}
