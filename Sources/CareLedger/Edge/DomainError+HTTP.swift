import HTTP

/// The one place domain errors become HTTP: a status, a stable code, a message and any headers.
extension DomainError: HTTPResponseError {
    var status: HTTPStatus {
        switch self {
        case .invalid: .badRequest
        case .invalidResource: .unprocessableContent
        case .notFound: .notFound
        case .forbidden, .consentDenied, .consentRevoked: .forbidden
        case .conflict, .patientAlreadyRegistered: .conflict
        case .erased: .gone
        case .notYetSigned: .serviceUnavailable
        case .inconsistentStorage: .internalServerError
        case .safetyCheckFailed: .unprocessableContent
        case .prescription(let refusal):
            switch refusal {
            case .medicationMissing, .notYetValid, .expired, .quantityExceeded, .quantityUnitMismatch: .unprocessableContent
            case .pharmacyNotNamed: .forbidden
            case .cancelled, .notActive, .noFillsLeft: .conflict
            }
        case .device(let refusal, _):
            switch refusal {
            case .unknownKey, .revokedKey, .badSignature: .unauthorized
            case .transitionNotAllowed, .replayed: .conflict
            case .batchTooLarge: .contentTooLarge
            case .unsupportedAlgorithm, .malformedSignature, .deviceMismatch, .patientMismatch, .outsideSkew, .unsupportedTag, .udiMismatch, .unreadableUDI:
                .unprocessableContent
            }
        }
    }

    var code: String {
        switch self {
        case .invalid: "bad_request"
        case .invalidResource: "invalid_resource"
        case .notFound: "not_found"
        case .forbidden: "forbidden"
        case .conflict, .patientAlreadyRegistered: "conflict"
        case .consentDenied: "consent_denied"
        case .consentRevoked: "consent_revoked"
        case .erased: "erased"
        case .notYetSigned: "unavailable"
        case .inconsistentStorage: "internal_error"
        case .safetyCheckFailed: "safety_check_failed"
        case .prescription(let refusal): refusal.rawValue
        case .device(let refusal, _): refusal.rawValue
        }
    }

    var message: String {
        switch self {
        case .invalid(let message), .notFound(let message), .conflict(let message), .notYetSigned(let message), .device(_, let message): message
        case .invalidResource(let path, let problem): "\(path): \(problem)."
        case .forbidden: "Your role does not allow this action."
        case .patientAlreadyRegistered(let patientId): "An identifier of this patient is already registered, to patient \(patientId)."
        case .consentDenied: "The patient's consent does not permit this disclosure."
        case .consentRevoked: "The patient's consent no longer permits this disclosure."
        case .erased: "This patient's data was erased."
        case .inconsistentStorage: "Internal server error."
        case .safetyCheckFailed(let count):
            "The prescription's safety checks found \(count) high-severity problem(s) it does not override; see findings. Change the prescription, or send an override with a reason and an acknowledgement of each."
        case .prescription(let refusal):
            switch refusal {
            case .medicationMissing: "The MedicationRequest names no medication (medicationCodeableConcept or medicationReference)."
            case .pharmacyNotNamed: "The prescription names another pharmacy; only that pharmacy may fill it."
            case .cancelled: "The prescription was cancelled; it cannot be filled or cancelled again."
            case .notActive: "The prescription is not active (its MedicationRequest status is not 'active'); it cannot be filled."
            case .notYetValid: "The prescription's validity period has not started."
            case .expired: "The prescription's validity period has ended."
            case .noFillsLeft: "Every fill the prescription allows has been dispensed."
            case .quantityExceeded: "The quantity is more than the prescription allows per fill."
            case .quantityUnitMismatch: "The quantity's unit is not the unit the prescription is written in."
            }
        }
    }

    var headers: HTTPHeaders {
        switch self {
        case .patientAlreadyRegistered(let patientId): HTTPHeaders([("Location", "/v1/patients/\(patientId)")])
        case .notYetSigned: HTTPHeaders([("Retry-After", "1")])
        case .invalid, .invalidResource, .notFound, .forbidden, .conflict, .consentDenied, .consentRevoked, .erased, .inconsistentStorage,
             .safetyCheckFailed, .prescription, .device:
            HTTPHeaders()
        }
    }
}
