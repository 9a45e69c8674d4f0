import Ledger

/// A FHIR R4 Patient as CareLedger accepts it: the resource exactly as sent, plus the identifiers
/// it is found by. Only what matching needs is checked; the rest of the resource is the sender's.
struct FHIRPatient {
    struct Identifier: Hashable {
        let system: String
        let value: String
    }

    let bytes: [UInt8]
    let identifiers: [Identifier]

    init(body: [UInt8]) throws(DomainError) {
        let value: JSONValue
        do {
            value = try JSONParser.parse(body)
        } catch {
            throw DomainError.invalid("The body is not valid JSON: \(error).")
        }
        guard case .object = value else { throw DomainError.invalid("The body is not a JSON object.") }
        guard value["resourceType"]?.stringValue == "Patient" else { throw DomainError.invalidResource("resourceType", "must be \"Patient\"") }
        guard case .array(let list)? = value["identifier"], !list.isEmpty else {
            throw DomainError.invalidResource("identifier", "needs at least one identifier with system and value")
        }
        var identifiers: [Identifier] = []
        for (index, item) in list.enumerated() {
            guard let system = item["system"]?.stringValue, !system.isEmpty, system.utf8.count <= 500,
                  let text = item["value"]?.stringValue, !text.isEmpty, text.utf8.count <= 500 else {
                throw DomainError.invalidResource("identifier[\(index)]", "needs a non-empty system and value")
            }
            identifiers.append(Identifier(system: system, value: text))
        }
        if let gender = value["gender"] {
            guard let text = gender.stringValue, ["male", "female", "other", "unknown"].contains(text) else {
                throw DomainError.invalidResource("gender", "must be male, female, other or unknown")
            }
        }
        if let birthDate = value["birthDate"] {
            guard let text = birthDate.stringValue, Self.isFHIRDate(text) else {
                throw DomainError.invalidResource("birthDate", "must be a FHIR date: YYYY, YYYY-MM or YYYY-MM-DD")
            }
        }
        bytes = body
        self.identifiers = Array(Set(identifiers)).sorted { ($0.system, $0.value) < ($1.system, $1.value) }
    }

    static func isFHIRDate(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count), parts[0].count == 4, parts.dropFirst().allSatisfy({ $0.count == 2 }),
              parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }) else { return false }
        if parts.count >= 2, let month = Int(parts[1]), !(1...12).contains(month) { return false }
        if parts.count == 3, let day = Int(parts[2]), !(1...31).contains(day) { return false }
        return true
    }
}
