import FoundationEssentials

/// The check before one organization discloses a patient's data to another (an exchange, a claim):
/// the discloser must be a custodian of the patient or covered by the patient's consent itself
/// (anyone else learns nothing: 404, as for an unknown patient), and the recipient must be covered
/// by the patient's consent for the purpose and category (403 `consent_denied`), unless a hospital
/// breaks the glass.
struct DisclosureGate: Sendable {
    /// What a permitted disclosure goes on with.
    struct Permitted: Sendable {
        let recipientKind: OrganizationKind
        /// The patient's wrapped data key, to seal the disclosed document.
        let wrappedDataKey: [UInt8]
    }

    let consents = ConsentStore()

    /// `recipientField` names the request field that carries the recipient, for the 400 when it is
    /// not an active organization (of the kind `recipientKind`, when given).
    func check(_ call: CallContext, recipient: String, recipientField: String, recipientKind expectedKind: OrganizationKind? = nil,
               patientId: String, purpose: PurposeOfUse, category: DataCategory, on runner: some QueryRunner) async throws -> Permitted {
        let known = try await consents.disclosureFacts(recipient: recipient, sender: call.caller.orgId, patientId: patientId, on: runner)
        guard let recipientKind = known.recipientKind, expectedKind.map({ $0 == recipientKind }) ?? true else {
            throw DomainError.invalid("'\(recipientField)' is not an active \(expectedKind?.rawValue ?? "organization").")
        }
        let rules = known.rules
        let now = Date()
        let discloserConsent = ConsentPolicy.decide(ConsentRequest(
            actorOrg: call.caller.orgId, actorKind: call.caller.orgKind, patientId: patientId, purpose: purpose, category: category, time: now),
            consents: rules)
        guard known.patientExists, known.senderIsCustodian || discloserConsent.permitted else {
            throw Denial.notVisible("patient", patientId)
        }
        if purpose == .emergencyTreatment {
            guard call.caller.role == .hospital else { throw DomainError.forbidden }
        } else {
            let disclosure = ConsentPolicy.decide(ConsentRequest(
                actorOrg: recipient, actorKind: recipientKind, patientId: patientId, purpose: purpose, category: category, time: now), consents: rules)
            guard disclosure.permitted else {
                throw Denial(error: .consentDenied,
                             reason: disclosure.reason + (disclosure.consentId.map { " (\($0))" } ?? ""), resourceType: "patient", resourceId: patientId)
            }
        }
        guard let wrapped = known.wrappedDataKey else { throw DomainError.erased }
        return Permitted(recipientKind: recipientKind, wrappedDataKey: wrapped)
    }
}
