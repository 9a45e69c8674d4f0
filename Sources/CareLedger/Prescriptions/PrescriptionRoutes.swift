import FoundationEssentials
import HTTP
import Ledger

/// `/v1/patients/{patientId}/allergies`, `/v1/prescriptions` (prescribe, `/check`, read, `/proof`,
/// `/cancel`, `/dispense`), the medication lists, and the CDS Hooks service over the same checks.
enum PrescriptionRoutes {
    static let prescribeFields: Set<String> = ["patient", "medicationRequest", "override"]

    static func register(in api: inout APIRouteBuilder, ledger: LedgerService, keys: PatientKeys, settings: SafetyChecks.Settings) {
        let pool = api.access.pool
        let service = PrescriptionService(pool: pool, ledger: ledger, keys: keys, knowledge: MedicationKnowledgeStore(), settings: settings)
        let allergies = AllergyService(pool: pool, ledger: ledger, keys: keys)
        api.access.metrics.gauge("careledger_prescription_records_cached", help: "Opened prescriptions and allergies kept for the checks (at most \(service.parsedRecords.capacity)).") {
            service.parsedRecords.count
        }
        CDSHooksRoutes.register(in: &api, service: service, keys: keys)

        api.on(.post, "/v1/patients/{patientId}/allergies", .allergiesRecord) { context in
            let recorded = try await allergies.record(try context.parameter("patientId"), try JSONBody.parse(context.request), context.call)
            return try JSONBody.response(.created, AllergyRecorded(
                id: recorded.id, documentHash: recorded.documentHash, noKnownDrugAllergy: recorded.noKnownDrugAllergy,
                ledger: recorded.entry.map(LedgerRef.init), createdAt: Timestamp.format(recorded.createdAt)))
        }

        api.on(.get, "/v1/patients/{patientId}/allergies", .allergiesRead) { context in
            let listed = try await allergies.list(try context.parameter("patientId"), context.call)
            return try JSONBody.page(encodedItems: try listed.map { item in
                try JSONBody.object(AllergyView(item), adding: [("allergyIntolerance", item.document)])
            }, next: nil)
        }

        api.on(.post, "/v1/prescriptions/check", .prescriptionsCheck) { context in
            let evaluation = try await service.check(try proposal(context), context.call)
            return .json(.ok, try JSONBody.object(CheckView(knowledgeVersion: evaluation.knowledgeVersion,
                                                            blocking: evaluation.findings.filter(\.blocking).count),
                                                  adding: [("findings", PrescriptionService.findingsJSON(evaluation.findings))]))
        }

        api.on(.post, "/v1/prescriptions", .prescriptionsCreate) { context in
            do {
                let created = try await service.prescribe(try proposal(context), idempotency: try Idempotency.of(context.request), context.call)
                return .json(.created, try JSONBody.object(Prescribed(
                    id: created.id, decisionHash: created.decisionHash, knowledgeVersion: created.knowledgeVersion,
                    ledger: created.entry.map(LedgerRef.init), createdAt: Timestamp.format(created.createdAt)),
                    adding: [("findings", created.findings)]))
            } catch let refusal as SafetyCheckRefusal {
                var response = Response.error(refusal.error, requestId: context.request.requestId)
                guard response.body.last == UInt8(ascii: "}") else { throw HTTPError.internalError }
                response.body.removeLast()
                response.body += Array(#","findings":"#.utf8) + PrescriptionService.findingsJSON(refusal.findings) + [UInt8(ascii: "}")]
                return response
            }
        }

        api.on(.get, "/v1/prescriptions/{prescriptionId}", .prescriptionsRead) { context in
            let read = try await service.read(try context.parameter("prescriptionId"), context.call)
            var members: [(name: String, json: [UInt8])] = [("medicationRequest", read.request)]
            if let findings = read.findings { members.append(("detectedIssues", findings)) }
            return .json(.ok, try JSONBody.object(PrescriptionView(read), adding: members))
        }

        api.on(.get, "/v1/prescriptions/{prescriptionId}/proof", .prescriptionsRead) { context in
            try JSONBody.response(.ok, Page(items: try await service.proof(try context.parameter("prescriptionId"), context.call), next: nil))
        }

        api.on(.post, "/v1/prescriptions/{prescriptionId}/cancel", .prescriptionsCancel) { context in
            let id: String = try context.parameter("prescriptionId")
            let reason = try JSONBody.optionalReason(context.request)
            let cancelled = try await service.cancel(id, reason: reason, context.call)
            return try JSONBody.response(.ok, Cancelled(id: id, status: "cancelled", cancelledAt: Timestamp.format(cancelled.cancelledAt),
                                                        ledger: cancelled.entry.map(LedgerRef.init)))
        }

        api.on(.post, "/v1/prescriptions/{prescriptionId}/dispense", .prescriptionsDispense) { context in
            let id: String = try context.parameter("prescriptionId")
            let body = try JSONBody.parse(context.request, fields: ["medicationDispense", "patientIdentifier"])
            guard let document = body["medicationDispense"] else { throw DomainError.invalid("Missing field 'medicationDispense'.") }
            var identifier: FHIRReference.Identifier?
            if let given = body["patientIdentifier"] {
                guard let system = given["system"]?.stringValue, !system.isEmpty, let value = given["value"]?.stringValue, !value.isEmpty else {
                    throw DomainError.invalid("'patientIdentifier' needs a system and a value.")
                }
                identifier = FHIRReference.Identifier(system: system, value: value)
            }
            let filled = try await service.dispense(id, try FHIRMedicationDispense(document), patientIdentifier: identifier,
                                                    idempotency: try Idempotency.of(context.request), context.call)
            return try JSONBody.response(.created, Fill(
                prescription: filled.prescriptionId, fill: filled.fill, fillsRemaining: filled.fillsRemaining, documentHash: filled.documentHash,
                ledger: filled.entry.map(LedgerRef.init), createdAt: Timestamp.format(filled.createdAt)))
        }

        api.on(.get, "/v1/patients/{patientId}/medications", .medicationsRead) { context in
            try medicationList(try await service.medications(of: try context.parameter("patientId"), context.call))
        }

        api.on(.get, "/v1/me/medications", .meMedications) { context in
            guard let patientId = context.caller.patientId else { throw DomainError.forbidden }
            return try medicationList(try await service.medications(of: patientId, context.call))
        }
    }

    /// The body of a prescription or a dry run: the patient, the MedicationRequest, and an override.
    private static func proposal(_ context: APIContext) throws -> PrescriptionService.Proposal {
        let body = try JSONBody.parse(context.request, fields: prescribeFields)
        guard let patientId = body["patient"]?.stringValue, !patientId.isEmpty else { throw DomainError.invalid("Missing field 'patient'.") }
        guard let document = body["medicationRequest"] else { throw DomainError.invalid("Missing field 'medicationRequest'.") }
        let request = try FHIRMedicationRequest(document, callerOrg: context.caller.orgId)
        var override: PrescriptionService.Override?
        if let given = body["override"] {
            guard case .object(let members) = given, let reason = given["reason"]?.stringValue else {
                throw DomainError.invalid("'override' needs a 'reason' and 'acknowledgements'.")
            }
            if let unknown = members.map(\.key).first(where: { !["reason", "acknowledgements"].contains($0) }) {
                throw DomainError.invalid("Unknown field 'override.\(unknown)'.")
            }
            guard case .array(let list)? = given["acknowledgements"], list.count <= 100 else {
                throw DomainError.invalid("'override.acknowledgements' must be an array of at most 100 {finding, note}.")
            }
            var acknowledgements: [String: String?] = [:]
            for item in list {
                guard let finding = item["finding"]?.stringValue else { throw DomainError.invalid("Each acknowledgement needs 'finding', a finding id.") }
                let note = item["note"]?.stringValue
                if let note, note.count > 2000 { throw DomainError.invalid("An acknowledgement's 'note' is at most 2000 characters.") }
                acknowledgements[finding] = .some(note)
            }
            override = PrescriptionService.Override(reason: reason, acknowledgements: acknowledgements)
        }
        return PrescriptionService.Proposal(patientId: patientId, request: request, override: override)
    }

    private static func medicationList(_ reads: [PrescriptionService.Read]) throws -> Response {
        try JSONBody.page(encodedItems: try reads.map { read in
            try JSONBody.object(PrescriptionView(read), adding: [("medicationRequest", read.request)])
        }, next: nil)
    }
}

private struct AllergyRecorded: Encodable {
    let id: String
    let documentHash: String
    let noKnownDrugAllergy: Bool
    let ledger: LedgerRef?
    let createdAt: String
}

private struct AllergyView: Encodable {
    let id: String
    let recordedBy: String
    let noKnownDrugAllergy: Bool
    let documentHash: String
    let createdAt: String

    init(_ listed: AllergyService.Listed) {
        id = listed.allergy.id
        recordedBy = listed.allergy.recordedBy
        noKnownDrugAllergy = listed.noKnownDrugAllergy
        documentHash = listed.allergy.documentHash
        createdAt = Timestamp.format(listed.allergy.createdAt)
    }
}

private struct CheckView: Encodable {
    let knowledgeVersion: String
    let blocking: Int
}

private struct Prescribed: Encodable {
    let id: String
    let decisionHash: String
    let knowledgeVersion: String
    let ledger: LedgerRef?
    let createdAt: String
}

private struct Cancelled: Encodable {
    let id: String
    let status: String
    let cancelledAt: String
    let ledger: LedgerRef?
}

private struct Fill: Encodable {
    let prescription: String
    let fill: Int
    let fillsRemaining: Int
    let documentHash: String
    let ledger: LedgerRef?
    let createdAt: String
}

private struct PrescriptionView: Encodable {
    struct FillView: Encodable {
        let fill: Int
        let pharmacy: String
        let quantity: String
        let documentHash: String
        let dispensedAt: String
    }

    let id: String
    let patient: String
    let prescriberOrg: String
    let status: String
    let fillsAllowed: Int
    let fills: Int
    let dispenser: String?
    let validFrom: String?
    let validUntil: String?
    let knowledgeVersion: String
    let decisionHash: String
    let createdAt: String
    let cancelledAt: String?
    let dispenses: [FillView]

    init(_ read: PrescriptionService.Read) {
        let prescription = read.prescription
        id = prescription.id
        patient = prescription.patientId
        prescriberOrg = prescription.prescriberOrg
        status = prescription.cancelledAt != nil ? "cancelled" : !prescription.active ? "inactive"
            : prescription.fills >= prescription.fillsAllowed ? "filled" : "active"
        fillsAllowed = prescription.fillsAllowed
        fills = prescription.fills
        dispenser = prescription.dispenser
        validFrom = prescription.validFrom.map(Timestamp.format)
        validUntil = prescription.validUntil.map(Timestamp.format)
        knowledgeVersion = prescription.knowledgeVersion
        decisionHash = prescription.decisionHash
        createdAt = Timestamp.format(prescription.createdAt)
        cancelledAt = prescription.cancelledAt.map(Timestamp.format)
        dispenses = read.fills.map {
            FillView(fill: $0.fillNumber, pharmacy: $0.pharmacyOrg, quantity: "\($0.quantity)", documentHash: $0.documentHash,
                     dispensedAt: Timestamp.format($0.createdAt))
        }
    }

    private enum CodingKeys: String, CodingKey {
        case id, patient, prescriberOrg, status, fillsAllowed, fills, dispenser, validFrom, validUntil, knowledgeVersion, decisionHash, createdAt,
             cancelledAt, dispenses
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(patient, forKey: .patient)
        try container.encode(prescriberOrg, forKey: .prescriberOrg)
        try container.encode(status, forKey: .status)
        try container.encode(fillsAllowed, forKey: .fillsAllowed)
        try container.encode(fills, forKey: .fills)
        try container.encode(dispenser, forKey: .dispenser)
        try container.encode(validFrom, forKey: .validFrom)
        try container.encode(validUntil, forKey: .validUntil)
        try container.encode(knowledgeVersion, forKey: .knowledgeVersion)
        try container.encode(decisionHash, forKey: .decisionHash)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(cancelledAt, forKey: .cancelledAt)
        try container.encode(dispenses, forKey: .dispenses)
    }
}
