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
        }
    }

    var message: String {
        switch self {
        case .invalid(let message), .notFound(let message), .conflict(let message), .notYetSigned(let message): message
        case .invalidResource(let path, let problem): "\(path): \(problem)."
        case .forbidden: "Your role does not allow this action."
        case .patientAlreadyRegistered(let patientId): "An identifier of this patient is already registered, to patient \(patientId)."
        case .consentDenied: "The patient's consent does not permit this disclosure."
        case .consentRevoked: "The patient's consent no longer permits this disclosure."
        case .erased: "This patient's data was erased."
        case .inconsistentStorage: "Internal server error."
        }
    }

    var headers: HTTPHeaders {
        switch self {
        case .patientAlreadyRegistered(let patientId): HTTPHeaders([("Location", "/v1/patients/\(patientId)")])
        case .notYetSigned: HTTPHeaders([("Retry-After", "1")])
        case .invalid, .invalidResource, .notFound, .forbidden, .conflict, .consentDenied, .consentRevoked, .erased, .inconsistentStorage:
            HTTPHeaders()
        }
    }
}
