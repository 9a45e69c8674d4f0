@testable import CareLedger
import Foundation
import Testing
import TestSupport

/// Two hospitals and two pharmacies sharing one patient: hospital A registered the patient and
/// prescribes; hospital B is another custodian of the same patient (it registered the same
/// identifier) whose records A may see only under the patient's consent.
struct PrescriptionWorld {
    static let rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    static let identifierSystem = "urn:oid:2.16.840.1.113883.4.1"

    let api: APIHarness
    let hospitalA: String
    let orgA: String
    let hospitalB: String
    let orgB: String
    let pharmacy1: String
    let pharmacyOrg1: String
    let pharmacy2: String
    let pharmacyOrg2: String
    let patientKey: String
    let patientId: String
    let identifier: String

    static func make(_ api: APIHarness, identifier: String = "rx-\(UUID().uuidString.prefix(8))") async throws -> PrescriptionWorld {
        let orgA = try await api.createOrg("Hospital A", "hospital"), orgB = try await api.createOrg("Hospital B", "hospital")
        let pharmacyOrg1 = try await api.createOrg("Pharmacy 1", "pharmacy"), pharmacyOrg2 = try await api.createOrg("Pharmacy 2", "pharmacy")
        let hospitalA = try await api.issueKey(orgA, "hospital").apiKey, hospitalB = try await api.issueKey(orgB, "hospital").apiKey
        let pharmacy1 = try await api.issueKey(pharmacyOrg1, "pharmacy").apiKey, pharmacy2 = try await api.issueKey(pharmacyOrg2, "pharmacy").apiKey
        let patient = #"{"resourceType":"Patient","identifier":[{"system":"\#(identifierSystem)","value":"\#(identifier)"}]}"#
        let patientId = try #require(await api.call(.post, "/v1/patients", key: hospitalA, body: patient)["id"])
        let again = await api.call(.post, "/v1/patients", key: hospitalB, body: patient)
        guard again.status == 409 else { throw HarnessError(again.text) }
        let patientKey = try await api.issueKey(orgA, "patient", extra: #","patientId":"\#(patientId)""#).apiKey
        return PrescriptionWorld(api: api, hospitalA: hospitalA, orgA: orgA, hospitalB: hospitalB, orgB: orgB, pharmacy1: pharmacy1,
                                 pharmacyOrg1: pharmacyOrg1, pharmacy2: pharmacy2, pharmacyOrg2: pharmacyOrg2, patientKey: patientKey,
                                 patientId: patientId, identifier: identifier)
    }

    /// The patient consents to `org` reading their medication record for treatment.
    func consent(medicationsTo org: String) async throws {
        let reply = await api.call(.post, "/v1/patients/\(patientId)/consents", key: patientKey,
                                   body: #"{"grantee":{"orgId":"\#(org)"},"purposes":["TREAT"],"categories":["medication"],"evidenceHash":"sha256:\#(String(repeating: "c", count: 64))"}"#)
        guard reply.status == 201 else { throw HarnessError(reply.text) }
    }

    /// A MedicationRequest for an RxNorm code, valid for a year from today.
    static func request(_ code: String, system: String = rxnorm, prescriber: String = "1111111111", dose: Double? = 1, perDay: Int? = 1,
                        quantity: Double? = 30, unit: String = "TAB", repeats: Int = 0, supplyDays: Int? = nil, performer: String? = nil,
                        validFrom: String = "2026-01-01", validUntil: String = "2030-12-31", status: String = "active", extra: String = "") -> String {
        var dosage = ""
        if let dose, let perDay {
            dosage = #","dosageInstruction":[{"sequence":1,"timing":{"repeat":{"frequency":\#(perDay),"period":1,"periodUnit":"d"}},"doseAndRate":[{"doseQuantity":{"value":\#(dose),"unit":"\#(unit)","code":"\#(unit)"}}]}]"#
        }
        var dispense = #""validityPeriod":{"start":"\#(validFrom)","end":"\#(validUntil)"},"numberOfRepeatsAllowed":\#(repeats)"#
        if let quantity { dispense += #","quantity":{"value":\#(quantity),"unit":"\#(unit)","code":"\#(unit)"}"# }
        if let supplyDays { dispense += #","expectedSupplyDuration":{"value":\#(supplyDays),"unit":"days","system":"http://unitsofmeasure.org","code":"d"}"# }
        if let performer { dispense += #","performer":{"reference":"Organization/\#(performer)"}"# }
        return """
            {"resourceType":"MedicationRequest","status":"\(status)","intent":"order",\
            "medicationCodeableConcept":{"coding":[{"system":"\(system)","code":"\(code)"}]},\
            "subject":{"reference":"Patient/local"},"authoredOn":"2026-12-01",\
            "requester":{"identifier":{"system":"http://hl7.org/fhir/sid/us-npi","value":"\(prescriber)"},"display":"Dr \(prescriber)"}\
            \(dosage),"dispenseRequest":{\(dispense)}\(extra)}
            """
    }

    func prescribe(_ request: String, key: String? = nil, override: String? = nil, headers: [(String, String)] = []) async -> APIHarness.Reply {
        let overrideMember = override.map { #","override":\#($0)"# } ?? ""
        return await api.call(.post, "/v1/prescriptions", key: key ?? hospitalA,
                              body: #"{"patient":"\#(patientId)","medicationRequest":\#(request)\#(overrideMember)}"#, headers: headers)
    }

    func check(_ request: String, key: String? = nil, headers: [(String, String)] = []) async -> APIHarness.Reply {
        await api.call(.post, "/v1/prescriptions/check", key: key ?? hospitalA, body: #"{"patient":"\#(patientId)","medicationRequest":\#(request)}"#,
                       headers: headers)
    }

    func recordAllergy(_ document: String, key: String? = nil) async throws -> String {
        let reply = await api.call(.post, "/v1/patients/\(patientId)/allergies", key: key ?? hospitalA, body: document)
        guard reply.status == 201, let id = reply["id"] else { throw HarnessError(reply.text) }
        return id
    }

    /// A prescription that must be accepted; its id.
    func prescribed(_ request: String, key: String? = nil) async throws -> String {
        let reply = await prescribe(request, key: key)
        guard reply.status == 201, let id = reply["id"] else { throw HarnessError(reply.text) }
        return id
    }

    static func findings(_ reply: APIHarness.Reply) -> [[String: Any]] {
        reply.json["findings"] as? [[String: Any]] ?? []
    }

    /// The first finding's DetectedIssue detail ("" when there is none).
    static func firstDetail(_ reply: APIHarness.Reply) -> String {
        (findings(reply).first?["detectedIssue"] as? [String: Any])?["detail"] as? String ?? ""
    }

    static func codes(_ reply: APIHarness.Reply) -> [String] {
        findings(reply).compactMap { finding in
            guard let code = finding["code"] as? String, let severity = finding["severity"] as? String else { return nil }
            return code + ":" + severity
        }.sorted()
    }

    static func fixture(_ name: String) throws -> String {
        String(decoding: try SharedFiles.data("fixtures/fhir/\(name).json"), as: UTF8.self)
    }
}
