@testable import CareLedger
import Crypto
import Foundation
import HTTP
import Ledger
import Testing
import Telemetry
import TestSupport

@Suite struct PrescriptionTests {
    typealias World = PrescriptionWorld

    @Test func theSpecificationsExamplesGoThroughUnchanged() async throws {
        let lines = LogLines()
        defer { for line in lines.captured where line.contains("error") { print("LOG", line) } }
        try await APIHarness.with(runningLedger: true, log: EventLog(sink: lines)) { api in
            let world = try await World.make(api)
            for name in ["allergyintolerance-example", "allergyintolerance-medication", "allergyintolerance-nkda"] {
                let document = try World.fixture(name)
                let reply = await api.call(.post, "/v1/patients/\(world.patientId)/allergies", key: world.hospitalA, body: document)
                #expect(reply.status == 201, "\(name): \(reply.text)")
                #expect(reply["documentHash"] == "sha256:" + SHA256.hexDigest(try JCS.canonicalize(json: Array(document.utf8))))
                #expect(reply.json["noKnownDrugAllergy"] as? Bool == (name == "allergyintolerance-nkda"))
            }
            let listed = await api.call(.get, "/v1/patients/\(world.patientId)/allergies", key: world.hospitalA)
            #expect(listed.items.count == 3)
            let nkda = try #require(listed.items.first { $0["noKnownDrugAllergy"] as? Bool == true })
            #expect(try canonical(nkda["allergyIntolerance"]) == (try JCS.canonicalize(json: Array(try World.fixture("allergyintolerance-nkda").utf8))))

            // The penicillin allergy of the example is active: amoxicillin (same class) is refused.
            let amoxicillin = await world.prescribe(World.request("308192"))
            #expect(amoxicillin.status == 422 && amoxicillin.errorCode == "safety_check_failed", "\(amoxicillin.text)")
            #expect(World.codes(amoxicillin) == ["ALGY:high"])

            // The MedicationRequest examples, exactly as published.
            var ids: [String: String] = [:]
            for name in ["medicationrequest0301", "medicationrequest0302", "medicationrequestexample1"] {
                let document = try World.fixture(name)
                let reply = await world.prescribe(document)
                #expect(reply.status == 201, "\(name): \(reply.text)")
                ids[name] = reply["id"]
                let read = await api.call(.get, "/v1/prescriptions/\(reply["id"] ?? "")", key: world.hospitalA)
                #expect(try canonical(read.json["medicationRequest"]) == (try JCS.canonicalize(json: Array(document.utf8))))
            }
            // Oral-form oxycodone names no strength: its dose cannot be converted, and it says so.
            let oxycodone = await api.call(.get, "/v1/prescriptions/\(ids["medicationrequest0301"] ?? "")", key: world.hospitalA)
            let issues = oxycodone.json["detectedIssues"] as? [[String: Any]] ?? []
            #expect(issues.contains { Self.issueCode($0) == "DOSEH" && $0["severity"] as? String == "low" }, "\(oxycodone.text)")
            #expect(oxycodone["status"] == "inactive", "a completed MedicationRequest cannot be filled")

            // The dispense example fills a vancomycin prescription written for 12 vials.
            let vancomycin = World.request("0069-2587-10", system: "http://hl7.org/fhir/sid/ndc", dose: nil, quantity: 12, unit: "Vial", repeats: 1,
                                           performer: world.pharmacyOrg1)
            let rx = try await world.prescribed(vancomycin)
            let dispense = try World.fixture("medicationdispense0301")
            let filled = await api.call(.post, "/v1/prescriptions/\(rx)/dispense", key: world.pharmacy1, body: #"{"medicationDispense":\#(dispense)}"#)
            #expect(filled.status == 201 && filled.json["fill"] as? Int == 1 && filled.json["fillsRemaining"] as? Int == 1, "\(filled.text)")
            #expect(filled["documentHash"] == "sha256:" + SHA256.hexDigest(try JCS.canonicalize(json: Array(dispense.utf8))))

            // The DetectedIssue example travels as any clinical document does.
            let issue = try World.fixture("detectedissue-example")
            try await world.consent(medicationsTo: world.orgB)
            let sent = await api.call(.post, "/v1/exchanges", key: world.hospitalA,
                                      body: #"{"to":"\#(world.orgB)","patient":"\#(world.patientId)","purpose":"TREAT","category":"medication","document":\#(issue)}"#)
            #expect(sent.status == 201, "\(sent.text)")
            let received = await api.call(.get, "/v1/exchanges/\(sent["id"] ?? "")", key: world.hospitalB)
            #expect(try canonical(received.json["document"]) == (try JCS.canonicalize(json: Array(issue.utf8))))
        }
    }

    static func issueCode(_ issue: [String: Any]) -> String? {
        ((issue["code"] as? [String: Any])?["coding"] as? [[String: Any]])?.first?["code"] as? String
    }
}
