@testable import CareLedger
import Crypto
import Foundation
import HTTP
import Ledger
import Postgres
import Testing
import Synchronization
import Telemetry
import TestSupport

/// A hospital with a patient, the patient's insurer (covered by a payment consent), and a second
/// insurer the patient never consented to.
struct ClaimWorld {
    let api: APIHarness
    let hospital: String
    let hospitalOrg: String
    let insurer: String
    let insurerOrg: String
    let otherInsurer: String
    let otherInsurerOrg: String
    let patientId: String

    static func make(_ api: APIHarness, consent: Bool = true) async throws -> ClaimWorld {
        let hospitalOrg = try await api.createOrg("General", "hospital")
        let insurerOrg = try await api.createOrg("Payer", "insurer"), otherInsurerOrg = try await api.createOrg("Other payer", "insurer")
        let hospital = try await api.issueKey(hospitalOrg, "hospital").apiKey
        let insurer = try await api.issueKey(insurerOrg, "insurer").apiKey, otherInsurer = try await api.issueKey(otherInsurerOrg, "insurer").apiKey
        let patientId = try #require(await api.call(.post, "/v1/patients", key: hospital,
                                                    body: #"{"resourceType":"Patient","identifier":[{"system":"urn:n","value":"c1"}]}"#)["id"])
        let world = ClaimWorld(api: api, hospital: hospital, hospitalOrg: hospitalOrg, insurer: insurer, insurerOrg: insurerOrg, otherInsurer: otherInsurer,
                               otherInsurerOrg: otherInsurerOrg, patientId: patientId)
        if consent { try await world.consentToPayment() }
        return world
    }

    func consentToPayment() async throws {
        let evidence = "sha256:" + String(repeating: "b", count: 64)
        let reply = await api.call(.post, "/v1/patients/\(patientId)/consents", key: hospital,
                                   body: #"{"grantee":{"orgId":"\#(insurerOrg)"},"purposes":["HPAYMT"],"categories":["claim"],"evidenceHash":"\#(evidence)"}"#)
        guard reply.status == 201 else { throw HarnessError(reply.text) }
    }

    func submit(_ claim: String, insurerOrg: String? = nil, key: String? = nil, idempotencyKey: String? = nil) async -> APIHarness.Reply {
        await api.call(.post, "/v1/claims", key: key ?? hospital,
                       body: #"{"insurer":"\#(insurerOrg ?? self.insurerOrg)","patient":"\#(patientId)","claim":\#(claim)}"#,
                       headers: idempotencyKey.map { [("Idempotency-Key", $0)] } ?? [])
    }

    static func fixture(_ name: String) throws -> String {
        String(decoding: try SharedFiles.data("fixtures/fhir/\(name).json"), as: UTF8.self)
    }
}

/// The canonical form of a JSON object from a reply, for comparing with a fixture's.
func canonical(_ object: Any?) throws -> [UInt8] {
    let value = try #require(object)
    return try JCS.canonicalize(json: Array(try JSONSerialization.data(withJSONObject: value)))
}

@Suite struct ClaimTests {
    static let examples = ["claim-example", "claim-example-pharmacy-medication", "claim-example-professional"]

    @Test func theSpecificationsClaimsTravelEndToEnd() async throws {
        let keys = try PatientKeys.forTests()
        try await APIHarness.with(runningLedger: true, patientKeys: keys) { api in
            let world = try await ClaimWorld.make(api, consent: false)
            let first = try ClaimWorld.fixture("claim-example")
            let refused = await world.submit(first)
            #expect(refused.status == 403 && refused.errorCode == "consent_denied", "\(refused.text)")
            try await world.consentToPayment()

            var ids: [String] = []
            for (name, total) in zip(Self.examples, [135.57, 90, 75]) {
                let document = try ClaimWorld.fixture(name)
                let reply = await world.submit(document)
                #expect(reply.status == 201, "\(name): \(reply.text)")
                #expect(reply["documentHash"] == "sha256:" + SHA256.hexDigest(try JCS.canonicalize(json: Array(document.utf8))))
                #expect(reply["status"] == "submitted" && (reply.json["ledger"] as? [String: Any])?["seq"] is Int)
                #expect((reply.json["total"] as? [String: Any])?["value"] as? Double == total)
                ids.append(try #require(reply["id"]))
            }

            // Only the two parties see a claim; the document comes back exactly as sent.
            let read = await api.call(.get, "/v1/claims/\(ids[0])", key: world.insurer)
            #expect(read.status == 200 && read["status"] == "submitted")
            #expect(try canonical(read.json["claim"]) == (try JCS.canonicalize(json: Array(first.utf8))))
            #expect(await api.call(.get, "/v1/claims/\(ids[0])", key: world.otherInsurer).status == 404)
            #expect(await api.call(.get, "/v1/claims/clm_unknown", key: world.insurer).status == 404)

            // The insurer's feed has the three claims in order, with their documents; the other has nothing.
            let feed = await api.call(.get, "/v1/claims/feed", key: world.insurer)
            #expect(feed.items.map { $0["claimId"] as? String } == ids.map(Optional.init))
            #expect(feed.items.allSatisfy { $0["event"] as? String == "claim.submitted" && ($0["document"] as? [String: Any])?["resourceType"] as? String == "Claim" })
            #expect(await api.call(.get, "/v1/claims/feed", key: world.otherInsurer).items.isEmpty)
            let patientLog = try await api.auditEvents(where: "action = 'claims.feed' AND patient_id = '\(world.patientId)'")
            #expect(patientLog.count == 3, "every delivered claim shows in its patient's access log")

            // Adjudication with the specification's ClaimResponse; the hospital follows responses.
            let response = try ClaimWorld.fixture("claimresponse-example")
            let adjudicated = await api.call(.post, "/v1/claims/\(ids[0])/adjudication", key: world.insurer, body: response, headers: [("Idempotency-Key", "adj-1")])
            #expect(adjudicated.status == 201 && adjudicated["status"] == "adjudicated" && adjudicated["outcome"] == "complete", "\(adjudicated.text)")
            // A retry with the key is the same adjudication, not a 409; the key on another claim is another request.
            let retried = await api.call(.post, "/v1/claims/\(ids[0])/adjudication", key: world.insurer, body: response, headers: [("Idempotency-Key", "adj-1")])
            #expect(retried.status == 201 && retried.text == adjudicated.text, "\(retried.text)")
            #expect(await api.call(.post, "/v1/claims/\(ids[2])/adjudication", key: world.insurer, body: response, headers: [("Idempotency-Key", "adj-1")]).status == 409)
            let responses = await api.call(.get, "/v1/claims/responses/feed", key: world.hospital)
            #expect(responses.items.count == 1 && responses.items.first?["claimId"] as? String == ids[0])
            #expect(try canonical(responses.items.first?["document"]) == (try JCS.canonicalize(json: Array(response.utf8))))
            let errorResponse = try ClaimWorld.fixture("claimresponse-example-2")
            #expect(await api.call(.post, "/v1/claims/\(ids[2])/adjudication", key: world.insurer, body: errorResponse).status == 201)

            // Only submitted -> adjudicated and submitted -> cancelled.
            #expect(await api.call(.post, "/v1/claims/\(ids[0])/adjudication", key: world.insurer, body: response).status == 409)
            #expect(await api.call(.post, "/v1/claims/\(ids[0])/cancel", key: world.hospital).status == 409)
            let cancelled = await api.call(.post, "/v1/claims/\(ids[1])/cancel", key: world.hospital, body: #"{"reason":"Billed twice"}"#,
                                           headers: [("Idempotency-Key", "cancel-1")])
            #expect(cancelled.status == 200 && cancelled["status"] == "cancelled", "\(cancelled.text)")
            let cancelledAgain = await api.call(.post, "/v1/claims/\(ids[1])/cancel", key: world.hospital, body: #"{"reason":"Billed twice"}"#,
                                                headers: [("Idempotency-Key", "cancel-1")])
            #expect(cancelledAgain.status == 200 && cancelledAgain.text == cancelled.text, "\(cancelledAgain.text)")
            #expect(await api.call(.post, "/v1/claims/\(ids[1])/cancel", key: world.hospital).status == 409)
            #expect(await api.call(.post, "/v1/claims/\(ids[1])/adjudication", key: world.insurer, body: response).status == 409)
            #expect(await api.call(.post, "/v1/claims/\(ids[1])/adjudication", key: world.otherInsurer, body: response).status == 404)

            // The insurer's feed goes on after its cursor with the cancellation only.
            let cursor = try #require(feed.json["cursor"] as? String)
            let later = await api.call(.get, "/v1/claims/feed?after=\(cursor)", key: world.insurer)
            #expect(later.items.map { $0["event"] as? String } == ["claim.cancelled"])
            let history = await api.call(.get, "/v1/claims/\(ids[1])", key: world.hospital)
            #expect((history.json["history"] as? [[String: Any]])?.map { $0["event"] as? String } == ["claim.submitted", "claim.cancelled"])

            await api.ledger.stop()
            try await api.ledger.sequencer.sequenceBatch()
            let report = try await LedgerVerifier(pool: api.pool, patientKeys: keys).verify()
            #expect(report.anchoredObjects["claim.submitted"] == 3 && report.anchoredObjects["claim.adjudicated"] == 2
                    && report.anchoredObjects["claim.cancelled"] == 1 && report.documentsRehashed)
            try await api.pool.query("ALTER TABLE claim_events DISABLE TRIGGER USER")
            try await api.pool.query("UPDATE claim_events SET document_hash = 'sha256:00' WHERE claim_id = \(ids[2]) AND kind = 'adjudicated'")
            let failure = await #expect(throws: VerificationFailure.self) { _ = try await LedgerVerifier(pool: api.pool).verify() }
            #expect(failure?.table == "claim_events")
        }
    }

    @Test func badClaimsAreRefusedAndChangeNothing() async throws {
        try await APIHarness.with { api in
            let world = try await ClaimWorld.make(api)
            let example = try JSONSerialization.jsonObject(with: Data(try ClaimWorld.fixture("claim-example").utf8)) as? [String: Any] ?? [:]
            func without(_ field: String) throws -> String {
                var claim = example
                claim.removeValue(forKey: field)
                return String(decoding: try JSONSerialization.data(withJSONObject: claim), as: UTF8.self)
            }
            for field in ["status", "type", "use", "patient", "created", "provider", "priority", "insurance", "item"] {
                let reply = await world.submit(try without(field))
                #expect(reply.status == 422 && reply.errorCode == "invalid_resource" && reply.text.contains("claim.\(field)"), "\(field): \(reply.text)")
            }
            var wrongTotal = example
            wrongTotal["total"] = ["value": 100, "currency": "USD"]
            let total = await world.submit(String(decoding: try JSONSerialization.data(withJSONObject: wrongTotal), as: UTF8.self))
            #expect(total.status == 422 && total.text.contains("claim.total") && total.text.contains("135.57"), "\(total.text)")
            let noAmount = #"{"resourceType":"Claim","status":"active","type":{},"use":"claim","patient":{},"created":"2024-01-01","provider":{},"priority":{},"insurance":[{}],"item":[{"productOrService":{}}]}"#
            #expect(await world.submit(noAmount).text.contains("needs net or unitPrice"))
            // unitPrice x quantity x factor, in exact decimals.
            let computed = #"{"resourceType":"Claim","status":"active","type":{},"use":"claim","patient":{},"created":"2024-01-01","provider":{},"priority":{},"insurance":[{}],"item":[{"productOrService":{},"unitPrice":{"value":0.1,"currency":"EUR"},"quantity":{"value":3},"factor":0.5}],"total":{"value":0.15,"currency":"EUR"}}"#
            let exact = await world.submit(computed)
            #expect(exact.status == 201, "\(exact.text)")

            #expect(await world.submit(try ClaimWorld.fixture("claim-example"), insurerOrg: world.hospitalOrg).status == 400, "a hospital is not an insurer")
            #expect(await world.submit(try ClaimWorld.fixture("claim-example"), insurerOrg: world.otherInsurerOrg).errorCode == "consent_denied")
            #expect(await api.call(.post, "/v1/claims", key: world.hospital, body: #"{"insurer":"x","patient":"y","claim":{},"extra":1}"#).status == 400)
            #expect(await api.call(.post, "/v1/claims", key: world.hospital, body: "{").status == 400)
            let stranger = try await api.issueKey(try await api.createOrg("Elsewhere", "hospital"), "hospital").apiKey
            #expect(await world.submit(try ClaimWorld.fixture("claim-example"), key: stranger).status == 404, "no relationship with the patient")
            #expect(await world.submit(try ClaimWorld.fixture("claim-example"), key: world.insurer).status == 403, "insurers do not submit")
            #expect(try await api.pool.query("SELECT count(*) AS n FROM claims")[0].decode("n", as: Int.self) == 1)

            // Idempotency: a retry gets the same claim; the key with another claim is refused.
            let once = await world.submit(try ClaimWorld.fixture("claim-example"), idempotencyKey: "claim-42")
            let twice = await world.submit(try ClaimWorld.fixture("claim-example"), idempotencyKey: "claim-42")
            #expect(once.status == 201 && twice.status == 201 && once["id"] == twice["id"])
            #expect(await world.submit(try ClaimWorld.fixture("claim-example-professional"), idempotencyKey: "claim-42").status == 409)
            #expect(try await api.pool.query("SELECT count(*) AS n FROM claims")[0].decode("n", as: Int.self) == 2)

            // A ClaimResponse that does not fit the claim.
            let id = try #require(once["id"])
            let overpaid = #"{"resourceType":"ClaimResponse","outcome":"complete","payment":{"amount":{"value":1000,"currency":"USD"}}}"#
            #expect(await api.call(.post, "/v1/claims/\(id)/adjudication", key: world.insurer, body: overpaid).status == 422)
            #expect(await api.call(.post, "/v1/claims/\(id)/adjudication", key: world.insurer, body: #"{"resourceType":"ClaimResponse","outcome":"maybe"}"#).status == 422)
            #expect(await api.call(.get, "/v1/claims/\(id)", key: world.hospital)["status"] == "submitted")
            // A retry after the claim moved on answers what the submission answered, not the claim as it stands.
            #expect(await api.call(.post, "/v1/claims/\(id)/cancel", key: world.hospital, body: #"{"reason":"entered in error"}"#).status == 200)
            let late = await world.submit(try ClaimWorld.fixture("claim-example"), idempotencyKey: "claim-42")
            #expect(late.status == 201 && late["id"] == id && late["status"] == "submitted", "\(late.text)")
        }
    }

    @Test func rulesAdjudicateAtSubmissionAndTheLedgerNamesTheRule() async throws {
        let keys = try PatientKeys.forTests()
        try await APIHarness.with(runningLedger: true, patientKeys: keys) { api in
            let world = try await ClaimWorld.make(api)
            let approve = await api.call(.post, "/v1/claims/rules", key: world.insurer, body: """
                {"name":"Routine dental","action":"approve","when":{"productOrServiceIn":["1200","exam"],"totalBelow":{"value":500,"currency":"USD"}}}
                """)
            #expect(approve.status == 201, "\(approve.text)")
            let approveId = try #require(approve["id"])

            let approved = await world.submit(try ClaimWorld.fixture("claim-example"))
            #expect(approved.status == 201 && approved["status"] == "adjudicated", "\(approved.text)")
            let decision = approved.json["adjudication"] as? [String: Any]
            #expect(decision?["ruleId"] as? String == approveId && decision?["ruleHash"] as? String == approve["ruleHash"])
            // A code outside the list: the rule does not apply.
            let pharmacy = await world.submit(try ClaimWorld.fixture("claim-example-pharmacy-medication"))
            #expect(pharmacy["status"] == "submitted")

            // Coverage that ended: a deny rule wins over the approve rule.
            let deny = await api.call(.post, "/v1/claims/rules", key: world.insurer, body: """
                {"name":"Coverage ended","action":"deny","when":{"patientIn":["\(world.patientId)"],"servicedAfter":"2013-12-31"}}
                """)
            let denied = await world.submit(try ClaimWorld.fixture("claim-example-professional"))
            #expect(denied["status"] == "adjudicated" && (denied.json["adjudication"] as? [String: Any])?["ruleId"] as? String == deny["id"])
            let deniedId = try #require(denied["id"])
            let view = await api.call(.get, "/v1/claims/\(deniedId)", key: world.hospital)
            let response = view.json["response"] as? [String: Any]
            #expect(((response?["payment"] as? [String: Any])?["amount"] as? [String: Any])?["value"] as? Double == 0)
            #expect(await api.call(.post, "/v1/claims/\(deniedId)/adjudication", key: world.insurer,
                                   body: #"{"resourceType":"ClaimResponse","outcome":"complete"}"#).status == 409)

            // Retired, the deny rule no longer applies; its id is unknown to another insurer.
            #expect(await api.call(.delete, "/v1/claims/rules/\(deny["id"] ?? "")", key: world.otherInsurer).status == 404)
            #expect(await api.call(.delete, "/v1/claims/rules/\(deny["id"] ?? "")", key: world.insurer).status == 200)
            #expect(await api.call(.delete, "/v1/claims/rules/\(deny["id"] ?? "")", key: world.insurer).status == 404)
            #expect(await world.submit(try ClaimWorld.fixture("claim-example-professional"))["status"] == "adjudicated")
            let listed = await api.call(.get, "/v1/claims/rules", key: world.insurer)
            #expect(listed.items.map { $0["id"] as? String } == [approveId])
            #expect(((listed.items.first?["rule"] as? [String: Any])?["when"] as? [String: Any])?["productOrServiceIn"] != nil)
            #expect(await api.call(.get, "/v1/claims/rules", key: world.otherInsurer).items.isEmpty)

            // Both parties' feeds carry the rule's decision.
            let insurerFeed = await api.call(.get, "/v1/claims/feed?limit=200", key: world.insurer)
            #expect(insurerFeed.items.filter { $0["event"] as? String == "claim.adjudicated" }.count == 3)
            let hospitalFeed = await api.call(.get, "/v1/claims/responses/feed", key: world.hospital)
            #expect(hospitalFeed.items.compactMap { $0["ruleId"] as? String }.count == 3)

            // The ledger entry names the rule and its hash.
            try await api.ledger.sequencer.sequenceBatch()
            let entry = try await api.pool.query("SELECT entry FROM ledger_entries WHERE type = 'claim.adjudicated' AND ref = \(deniedId)")[0].bytes("entry")
            let members = try #require(CanonicalScanner.canonicalObjectMembers(entry))
            #expect(members["basis"] == .string(deny["id"] ?? "") && members["basisHash"] == .string(deny["ruleHash"] ?? ""))
            let types = try await api.pool.query("SELECT type FROM ledger_entries WHERE ref = \(deny["id"] ?? "") ORDER BY seq").all.map { try $0.decode("type", as: String.self) }
            #expect(types == ["claim.rule.registered", "claim.rule.retired"])

            await api.ledger.stop()
            try await api.ledger.sequencer.sequenceBatch()
            let report = try await LedgerVerifier(pool: api.pool, patientKeys: keys).verify()
            #expect(report.anchoredObjects["claim.rule.registered"] == 2 && report.anchoredObjects["claim.rule.retired"] == 1)
            // A rule edited after the fact no longer matches what it decided.
            try await api.pool.query("UPDATE claim_rules SET rule = replace(convert_from(rule, 'UTF8'), '500', '5000')::bytea WHERE id = \(approveId)")
            let failure = await #expect(throws: VerificationFailure.self) { _ = try await LedgerVerifier(pool: api.pool).verify() }
            #expect(failure?.table == "claim_rules", "\(String(describing: failure))")
        }
    }

    /// A stored rule that no longer parses decides nothing, and says so: a log line naming it and a counter.
    @Test func aStoredRuleThatNoLongerParsesIsLoggedAndCountedNotSkippedInSilence() async throws {
        let lines = LogLines()
        try await APIHarness.with(runningLedger: true, log: EventLog(sink: lines)) { api in
            let world = try await ClaimWorld.make(api)
            let rule = await api.call(.post, "/v1/claims/rules", key: world.insurer,
                                      body: #"{"name":"Everything","action":"approve","when":{"totalBelow":{"value":1000000,"currency":"USD"}}}"#)
            let ruleId = try #require(rule["id"])
            // As after a change to the rule language: the stored document is no longer a rule.
            try await api.pool.query("UPDATE claim_rules SET rule = convert_to('{\"name\":\"Everything\",\"action\":\"approve\",\"when\":{\"retired\":1}}', 'UTF8') WHERE id = \(ruleId)")
            let submitted = await world.submit(try ClaimWorld.fixture("claim-example"))
            #expect(submitted.status == 201 && submitted["status"] == "submitted", "the unreadable rule decided nothing: \(submitted.text)")
            #expect(lines.captured.contains { $0.contains(#""level":"error""#) && $0.contains("stored claim rule does not parse") && $0.contains(ruleId) },
                    "\(lines.captured)")
            let metrics = await api.call(.get, "/metrics", key: nil, client: "127.0.0.1")
            #expect(metrics.text.contains("careledger_claim_rules_unreadable_total 1"), "\(metrics.text.prefix(400))")
        }
    }

    @Test func rulesAreDataAndBadOnesAreRefused() async throws {
        try await APIHarness.with { api in
            let world = try await ClaimWorld.make(api)
            for body in [
                #"{"name":"x","action":"pay","when":{"patientIn":["p"]}}"#,
                #"{"name":"x","action":"approve","when":{}}"#,
                #"{"name":"x","action":"approve","when":{"runScript":"rm -rf /"}}"#,
                #"{"name":"x","action":"approve","when":{"totalBelow":{"value":"5","currency":"USD"}}}"#,
                #"{"name":"x","action":"approve","when":{"servicedAfter":"yesterday"}}"#,
                #"{"name":"x","action":"approve","when":{"productOrServiceIn":[]}}"#,
                #"{"name":"x","action":"approve","when":{"patientIn":["p"]},"priority":1}"#,
            ] {
                let reply = await api.call(.post, "/v1/claims/rules", key: world.insurer, body: body)
                #expect(reply.status == 400, "\(body): \(reply.text)")
            }
            #expect(await api.call(.post, "/v1/claims/rules", key: world.hospital, body: #"{"name":"x","action":"approve","when":{"patientIn":["p"]}}"#).status == 403)
            #expect(try await api.pool.query("SELECT count(*) AS n FROM claim_rules")[0].decode("n", as: Int.self) == 0)
        }
    }

    /// Pure decisions, without the database.
    @Test func denyRulesWinAndEveryStatedConditionMustHold() throws {
        let claim = try FHIRClaim(try JSONParser.parse(Array(try ClaimWorld.fixture("claim-example").utf8)))
        #expect(claim.total == Money(value: Decimal(string: "135.57") ?? 0, currency: "USD") && claim.serviceDates == ["2014-08-16"])
        func rule(_ json: String) throws -> ClaimRule { try ClaimRule(try JSONParser.parse(Array(json.utf8))) }
        let cheap = try rule(#"{"name":"a","action":"approve","when":{"totalBelow":{"value":135.58,"currency":"USD"}}}"#)
        let exact = try rule(#"{"name":"b","action":"approve","when":{"totalBelow":{"value":135.57,"currency":"USD"}}}"#)
        let euros = try rule(#"{"name":"c","action":"approve","when":{"totalBelow":{"value":1000,"currency":"EUR"}}}"#)
        let oral = try rule(#"{"name":"d","action":"deny","when":{"claimTypeIn":["http://terminology.hl7.org/CodeSystem/claim-type|oral"],"patientIn":["pat_1"]}}"#)
        let ended = try rule(#"{"name":"e","action":"deny","when":{"servicedAfter":"2014-08-16"}}"#)
        #expect(cheap.matches(claim, patientId: "pat_1") && !exact.matches(claim, patientId: "pat_1") && !euros.matches(claim, patientId: "pat_1"))
        #expect(oral.matches(claim, patientId: "pat_1") && !oral.matches(claim, patientId: "pat_2"))
        #expect(!ended.matches(claim, patientId: "pat_1"), "served on the last covered day")
        let rules = [cheap, exact, oral]
        #expect(ClaimAdjudicator.decide(claim, patientId: "pat_1", rules: rules, rule: { $0 })?.name == "d")
        #expect(ClaimAdjudicator.decide(claim, patientId: "pat_2", rules: rules, rule: { $0 })?.name == "a")
        #expect(ClaimAdjudicator.decide(claim, patientId: "pat_2", rules: [exact, euros], rule: { $0 }) == nil)
        #expect(FHIRClaim.day("2014") == "2014-12-31" && FHIRClaim.day("2014-02") == "2014-02-31" && FHIRClaim.day("2014-02-03T10:00:00Z") == "2014-02-03")
        #expect(FHIRClaim.day("14-02-03") == nil)
    }
}

/// Log lines kept in memory.
final class LogLines: LogSink {
    private let lines = Mutex<[String]>([])

    func write(_ line: String) { lines.withLock { $0.append(line) } }
    func flush() {}

    var captured: [String] { lines.withLock { $0 } }
}
