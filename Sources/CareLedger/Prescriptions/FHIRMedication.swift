import FoundationEssentials
import GS1
import Ledger

/// A FHIR R4 MedicationRequest as CareLedger reads it: the document exactly as sent, and what the
/// checks and the fills need. Only those parts are checked; the rest is the prescriber's. Immutable;
/// a class because the checks pass the same parsed request around and keep it (`ParsedRecords`),
/// and every copy of a struct of this many fields retained each of them.
final class FHIRMedicationRequest: Sendable {
    /// One dosage instruction: an amount per administration and administrations per day, where given.
    struct Dosage: Sendable {
        let sequence: Int?
        let dose: FHIRQuantity?
        let perDay: Decimal?
    }

    /// The document exactly as sent; `.null` for a stored one read back for the checks, which need
    /// only what is parsed out of it (`ParsedRecords` keeps many, and a parsed tree is many times
    /// the size of its text).
    let document: JSONValue
    let codings: [Coding]
    /// How the request names the medication, for findings (never logged).
    let medicationText: String
    let active: Bool
    /// Who prescribed, the same across organizations when an identifier (an NPI) is given.
    let prescriber: String
    let prescriberDisplay: String
    /// `dispenseRequest.performer` as written (nil when none).
    let performer: FHIRReference?
    let fillsAllowed: Int
    let fillQuantity: FHIRQuantity?
    let supplyDays: Decimal?
    let validFrom: Date?
    let validUntil: Date?
    let dosages: [Dosage]
    /// The CareLedger prescription this one renews (`priorPrescription`), if it names one of ours.
    let renews: String?

    static let maximumRepeats = 100

    init(_ document: JSONValue, callerOrg: String, keepingDocument: Bool = true) throws(DomainError) {
        guard case .object = document else { throw .invalidResource("medicationRequest", "must be a FHIR MedicationRequest object") }
        guard document["resourceType"]?.stringValue == "MedicationRequest" else {
            throw .invalidResource("medicationRequest.resourceType", "must be \"MedicationRequest\"")
        }
        let statuses = ["active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown"]
        guard let status = document["status"]?.stringValue, statuses.contains(status) else {
            throw .invalidResource("medicationRequest.status", "must be one of \(statuses.joined(separator: ", "))")
        }
        guard let intent = document["intent"]?.stringValue, !intent.isEmpty else {
            throw .invalidResource("medicationRequest.intent", "is required")
        }
        let medication = try Self.medication(document)
        codings = medication.codings
        medicationText = medication.text
        active = status == "active" && intent != "proposal" && intent != "plan"

        guard let requester = document["requester"] else { throw .invalidResource("medicationRequest.requester", "is required: the prescriber") }
        let reference = try FHIRReference(requester, path: "medicationRequest.requester")
        if let identifier = reference.identifier {
            prescriber = identifier.system + "|" + identifier.value
        } else if let local = reference.reference {
            // A reference means something only inside the prescribing organization.
            prescriber = callerOrg + "/" + local
        } else {
            throw .invalidResource("medicationRequest.requester", "needs an identifier (such as an NPI) or a reference")
        }
        prescriberDisplay = reference.display ?? reference.reference ?? prescriber

        let dispense = document["dispenseRequest"]
        if let dispense, case .object = dispense {} else if dispense != nil {
            throw .invalidResource("medicationRequest.dispenseRequest", "must be an object")
        }
        if let repeats = dispense?["numberOfRepeatsAllowed"] {
            guard let count = repeats.numberValue, count >= 0, count <= Double(Self.maximumRepeats), count.rounded() == count else {
                throw .invalidResource("medicationRequest.dispenseRequest.numberOfRepeatsAllowed", "must be a whole number from 0 to \(Self.maximumRepeats)")
            }
            fillsAllowed = Int(count) + 1
        } else {
            fillsAllowed = 1
        }
        if let quantity = dispense?["quantity"] {
            fillQuantity = try FHIRQuantity(quantity, path: "medicationRequest.dispenseRequest.quantity")
        } else {
            fillQuantity = nil
        }
        if let duration = dispense?["expectedSupplyDuration"] {
            let quantity = try FHIRQuantity(duration, path: "medicationRequest.dispenseRequest.expectedSupplyDuration")
            supplyDays = quantity.days
        } else {
            supplyDays = nil
        }
        if let validity = dispense?["validityPeriod"] {
            let period = try FHIRPeriod(validity, path: "medicationRequest.dispenseRequest.validityPeriod")
            validFrom = period.start
            validUntil = period.end
        } else {
            validFrom = nil
            validUntil = nil
        }
        if let named = dispense?["performer"] {
            performer = try FHIRReference(named, path: "medicationRequest.dispenseRequest.performer")
        } else {
            performer = nil
        }

        var dosages: [Dosage] = []
        if let instructions = document["dosageInstruction"] {
            guard case .array(let list) = instructions, list.count <= 50 else {
                throw .invalidResource("medicationRequest.dosageInstruction", "must be an array of at most 50 dosages")
            }
            for (index, instruction) in list.enumerated() {
                dosages.append(try Self.dosage(instruction, path: "medicationRequest.dosageInstruction[\(index)]"))
            }
        }
        self.dosages = dosages
        if let prior = document["priorPrescription"]?["reference"]?.stringValue, prior.hasPrefix("MedicationRequest/") {
            renews = String(prior.dropFirst("MedicationRequest/".count))
        } else {
            renews = nil
        }
        self.document = keepingDocument ? document : .null
    }

    /// The medication's codes: `medicationCodeableConcept`, or the contained Medication that
    /// `medicationReference` points at ("#id").
    private static func medication(_ document: JSONValue) throws(DomainError) -> (codings: [Coding], text: String) {
        let concept: JSONValue
        if let codeable = document["medicationCodeableConcept"] {
            concept = codeable
        } else if let reference = document["medicationReference"] {
            guard let target = reference["reference"]?.stringValue, target.hasPrefix("#") else {
                throw .invalidResource("medicationRequest.medicationReference", "must point at a contained Medication (\"#id\")")
            }
            guard case .array(let contained)? = document["contained"],
                  let medication = contained.first(where: { $0["resourceType"]?.stringValue == "Medication" && "#" + ($0["id"]?.stringValue ?? "") == target }),
                  let code = medication["code"] else {
                throw .invalidResource("medicationRequest.medicationReference", "names no contained Medication with a code")
            }
            concept = code
        } else {
            throw .prescription(.medicationMissing)
        }
        let codings = try FHIRCodeableConcept.codings(concept, path: "medicationRequest.medication")
        let text = concept["text"]?.stringValue ?? concept["coding"].flatMap { list -> String? in
            guard case .array(let items) = list else { return nil }
            return items.lazy.compactMap { $0["display"]?.stringValue }.first
        } ?? codings.first.map { "\($0.system)|\($0.code)" } ?? "the medication"
        guard !codings.isEmpty || concept["text"] != nil else {
            throw .invalidResource("medicationRequest.medication[x]", "needs a coding or a text")
        }
        return (codings, text)
    }

    private static func dosage(_ instruction: JSONValue, path: String) throws(DomainError) -> Dosage {
        let sequence = instruction["sequence"]?.numberValue.flatMap { $0 >= 0 && $0 <= 1000 && $0.rounded() == $0 ? Int($0) : nil }
        var dose: FHIRQuantity?
        if case .array(let rates)? = instruction["doseAndRate"], let first = rates.first {
            if let quantity = first["doseQuantity"] {
                dose = try FHIRQuantity(quantity, path: path + ".doseAndRate[0].doseQuantity")
            } else if let high = first["doseRange"]?["high"] {
                // The most that may be taken, for a dose limit.
                dose = try FHIRQuantity(high, path: path + ".doseAndRate[0].doseRange.high")
            }
        }
        return Dosage(sequence: sequence, dose: dose, perDay: try perDay(instruction["timing"], path: path + ".timing"))
    }

    /// Administrations per day: from `timing.repeat` (frequency per period; the shorter period and
    /// the larger frequency, so a dose limit sees the most that may be taken), else a common code.
    private static func perDay(_ timing: JSONValue?, path: String) throws(DomainError) -> Decimal? {
        guard let timing else { return nil }
        if let repeating = timing["repeat"] {
            guard let periodValue = repeating["period"]?.numberValue else { return nil }
            guard periodValue >= 0.001, periodValue <= 10_000 else { throw .invalidResource(path + ".repeat.period", "must be a number from 0.001 to 10000") }
            let frequencyValue = repeating["frequencyMax"]?.numberValue ?? repeating["frequency"]?.numberValue ?? 1
            guard frequencyValue > 0, frequencyValue <= 10_000, frequencyValue.rounded() == frequencyValue else {
                throw .invalidResource(path + ".repeat.frequency", "must be a positive whole number")
            }
            let hours: Decimal
            switch repeating["periodUnit"]?.stringValue {
            case "s": hours = Decimal(1) / 3600
            case "min": hours = Decimal(1) / 60
            case "h": hours = 1
            case "d": hours = 24
            case "wk": hours = 168
            case "mo": hours = 720
            case "a": hours = 8760
            default: throw .invalidResource(path + ".repeat.periodUnit", "must be one of s, min, h, d, wk, mo, a")
            }
            return FHIRNumber.decimal(frequencyValue) * 24 / (FHIRNumber.decimal(periodValue) * hours)
        }
        if case .array(let codings)? = timing["code"]?["coding"] {
            for coding in codings {
                switch coding["code"]?.stringValue {
                case "QD", "AM", "PM", "QAM", "QPM", "HS": return 1
                case "BID": return 2
                case "TID": return 3
                case "QID": return 4
                case "Q4H": return 6
                case "Q6H": return 4
                case "Q8H": return 3
                case "QOD": return Decimal(1) / 2
                case "WK": return Decimal(1) / 7
                default: continue
                }
            }
        }
        return nil
    }
}

/// A FHIR R4 AllergyIntolerance as CareLedger reads it.
final class FHIRAllergyIntolerance: Sendable {
    let document: JSONValue
    let codings: [Coding]
    let text: String
    /// Active and not refuted or entered in error: what the checks consider.
    let applies: Bool
    /// "No known drug allergy" (SNOMED CT 409137002 and its relatives): recorded, checks nothing.
    let noKnownDrugAllergy: Bool
    let aboutMedication: Bool
    /// low, high or unable-to-assess, as recorded.
    let criticality: String?

    static let noKnownAllergyCodes: Set<String> = ["409137002", "716186003", "428607008"]

    init(_ document: JSONValue, keepingDocument: Bool = true) throws(DomainError) {
        guard case .object = document else { throw .invalid("The body is not a JSON object.") }
        guard document["resourceType"]?.stringValue == "AllergyIntolerance" else {
            throw .invalidResource("resourceType", "must be \"AllergyIntolerance\"")
        }
        guard let code = document["code"] else { throw .invalidResource("code", "is required: the substance, or \"no known drug allergy\"") }
        codings = try FHIRCodeableConcept.codings(code, path: "code")
        text = code["text"]?.stringValue ?? "the allergy"
        let clinical = Self.firstCode(document["clinicalStatus"])
        let verification = Self.firstCode(document["verificationStatus"])
        if let clinical, !["active", "inactive", "resolved"].contains(clinical) {
            throw .invalidResource("clinicalStatus", "must be active, inactive or resolved")
        }
        applies = (clinical ?? "active") == "active" && verification != "refuted" && verification != "entered-in-error"
        noKnownDrugAllergy = codings.contains { $0.system == "http://snomed.info/sct" && Self.noKnownAllergyCodes.contains($0.code) }
        if case .array(let categories)? = document["category"] {
            aboutMedication = categories.contains { $0.stringValue == "medication" }
        } else {
            aboutMedication = document["category"] == nil
        }
        criticality = document["criticality"]?.stringValue
        self.document = keepingDocument ? document : .null
    }

    private static func firstCode(_ concept: JSONValue?) -> String? {
        guard case .array(let codings)? = concept?["coding"] else { return nil }
        return codings.lazy.compactMap { $0["code"]?.stringValue }.first
    }
}

/// A FHIR R4 MedicationDispense as CareLedger reads it.
struct FHIRMedicationDispense: Sendable {
    let document: JSONValue
    let quantity: FHIRQuantity
    /// The serialized packs handed over, from `identifier` entries in GS1's system
    /// (`https://id.gs1.org` or `urn:oid:1.3.160`) or whose value is an SGTIN URN: any form a
    /// scanner gives (URN, Digital Link, element string).
    let packs: [PackKey]

    static let gs1Systems: Set<String> = ["https://id.gs1.org", "urn:oid:1.3.160"]

    init(_ document: JSONValue) throws(DomainError) {
        guard case .object = document else { throw .invalidResource("medicationDispense", "must be a FHIR MedicationDispense object") }
        guard document["resourceType"]?.stringValue == "MedicationDispense" else {
            throw .invalidResource("medicationDispense.resourceType", "must be \"MedicationDispense\"")
        }
        let statuses = ["preparation", "in-progress", "cancelled", "on-hold", "completed", "entered-in-error", "stopped", "declined", "unknown"]
        guard let status = document["status"]?.stringValue, statuses.contains(status) else {
            throw .invalidResource("medicationDispense.status", "must be one of \(statuses.joined(separator: ", "))")
        }
        guard ["preparation", "in-progress", "completed"].contains(status) else {
            throw .invalidResource("medicationDispense.status", "must be preparation, in-progress or completed for a fill")
        }
        guard document["medicationCodeableConcept"] != nil || document["medicationReference"] != nil else {
            throw .invalidResource("medicationDispense.medication[x]", "is required")
        }
        guard let quantity = document["quantity"] else { throw .invalidResource("medicationDispense.quantity", "is required: how much is handed over") }
        self.quantity = try FHIRQuantity(quantity, path: "medicationDispense.quantity")
        var packs: [PackKey] = []
        if case .array(let identifiers)? = document["identifier"] {
            for (index, identifier) in identifiers.enumerated() {
                guard let value = identifier["value"]?.stringValue else { continue }
                let system = identifier["system"]?.stringValue ?? ""
                guard Self.gs1Systems.contains(system) || value.hasPrefix("urn:epc:id:sgtin:") else { continue }
                do {
                    packs.append(try ScannedPack(value, referenceYear: GS1Date.today.year).key)
                } catch {
                    throw .invalidResource("medicationDispense.identifier[\(index)].value", "\(error.code): \(error.message)")
                }
            }
        }
        guard packs.count <= 100 else { throw .invalidResource("medicationDispense.identifier", "names more than 100 packs") }
        self.packs = packs
        self.document = document
    }
}

/// A FHIR Quantity with a positive value, in decimal.
struct FHIRQuantity: Sendable {
    let value: Decimal
    /// The UCUM or form code when given, else the unit as written.
    let unit: String?

    init(value: Decimal, unit: String?) {
        self.value = value
        self.unit = unit
    }

    init(_ value: JSONValue, path: String) throws(DomainError) {
        guard let number = value["value"]?.numberValue, number > 0, number <= 1_000_000_000 else {
            throw .invalidResource(path + ".value", "must be a positive number")
        }
        self.value = FHIRNumber.decimal(number)
        unit = value["code"]?.stringValue ?? value["unit"]?.stringValue
    }

    /// The quantity as days, when it is a duration.
    var days: Decimal? {
        switch unit {
        case "d", "day", "days": value
        case "wk", "week", "weeks": value * 7
        case "mo", "month", "months": value * 30
        case "h": value / 24
        default: nil
        }
    }

    /// Whether `unit` counts whole units of a dose form (tablets, capsules, patches, vials).
    var countsDoseUnits: Bool {
        guard let unit = unit?.lowercased() else { return true }
        return ["tab", "tabs", "tablet", "tablets", "cap", "caps", "capsule", "capsules", "{tbl}", "{tablet}", "{capsule}", "patch", "patches",
                "{patch}", "1", "{each}", "each", "ea", "vial", "vials", "{vial}", "spray", "{spray}", "actuat", "{actuat}", "film", "{film}"].contains(unit)
    }
}

/// A FHIR Reference: a literal reference, a logical identifier, a display.
struct FHIRReference: Sendable, Equatable {
    struct Identifier: Sendable, Equatable {
        let system: String
        let value: String
    }

    let reference: String?
    let identifier: Identifier?
    let display: String?

    /// The organization of ours this reference names: `Organization/{id}`, or an identifier in
    /// CareLedger's organization system.
    var organizationId: String? {
        if let reference, reference.hasPrefix("Organization/") { return String(reference.dropFirst("Organization/".count)) }
        if let identifier, identifier.system == Self.organizationSystem { return identifier.value }
        return nil
    }

    static let organizationSystem = "urn:careledger:organization"

    init(_ value: JSONValue, path: String) throws(DomainError) {
        guard case .object = value else { throw .invalidResource(path, "must be a Reference") }
        reference = value["reference"]?.stringValue
        display = value["display"]?.stringValue
        if let identifier = value["identifier"] {
            guard let system = identifier["system"]?.stringValue, !system.isEmpty, system.utf8.count <= 500,
                  let text = identifier["value"]?.stringValue, !text.isEmpty, text.utf8.count <= 500 else {
                throw .invalidResource(path + ".identifier", "needs a non-empty system and value")
            }
            self.identifier = Identifier(system: system, value: text)
        } else {
            identifier = nil
        }
        if let reference, reference.isEmpty || reference.utf8.count > 500 { throw .invalidResource(path + ".reference", "must be 1-500 characters") }
    }
}

enum FHIRCodeableConcept {
    static func codings(_ concept: JSONValue, path: String) throws(DomainError) -> [Coding] {
        guard case .object = concept else { throw .invalidResource(path, "must be a CodeableConcept") }
        guard let list = concept["coding"] else { return [] }
        guard case .array(let items) = list, items.count <= 20 else { throw .invalidResource(path + ".coding", "must be an array of at most 20 codings") }
        var codings: [Coding] = []
        for (index, item) in items.enumerated() {
            guard let system = item["system"]?.stringValue, let code = item["code"]?.stringValue, !code.isEmpty else {
                // A coding without system and code is the sender's note; it names nothing we can check.
                if item["system"] != nil || item["code"] != nil {
                    throw .invalidResource(path + ".coding[\(index)]", "needs both system and code")
                }
                continue
            }
            codings.append(Coding(system: system, code: code))
        }
        return codings
    }
}

/// A FHIR Period: `start` and `end` as instants (a date-only end covers its whole day).
struct FHIRPeriod: Sendable {
    let start: Date?
    let end: Date?

    init(_ value: JSONValue, path: String) throws(DomainError) {
        start = try Self.bound(value["start"], path: path + ".start")?.start
        end = try Self.bound(value["end"], path: path + ".end")?.end
        if let start, let end, end < start { throw .invalidResource(path, "ends before it starts") }
    }

    private static func bound(_ value: JSONValue?, path: String) throws(DomainError) -> (start: Date, end: Date)? {
        guard let value else { return nil }
        guard let text = value.stringValue, let range = FHIRDateTime.range(text) else { throw .invalidResource(path, "must be a FHIR date or dateTime") }
        return range
    }
}

enum FHIRDateTime {
    /// The instants a FHIR date or dateTime covers: a year, a month or a day is the whole of it (UTC).
    /// Plain calendar arithmetic: the server links FoundationEssentials only, whose `Calendar`
    /// cannot build dates without the internationalization module.
    static func range(_ text: String) -> (start: Date, end: Date)? {
        if text.count > 10 {
            guard let instant = Timestamp.parse(text) else { return nil }
            return (instant, instant)
        }
        guard FHIRPatient.isFHIRDate(text) else { return nil }
        let parts = text.split(separator: "-").compactMap { Int($0) }
        guard let year = parts.first, year >= 1 else { return nil }
        let month = parts.count > 1 ? parts[1] : 1, day = parts.count > 2 ? parts[2] : 1
        guard day <= daysIn(month: month, year: year) else { return nil }
        let start = daysSinceEpoch(year: year, month: month, day: day)
        let next: Int
        switch parts.count {
        case 1: next = daysSinceEpoch(year: year + 1, month: 1, day: 1)
        case 2: next = month == 12 ? daysSinceEpoch(year: year + 1, month: 1, day: 1) : daysSinceEpoch(year: year, month: month + 1, day: 1)
        default: next = start + 1
        }
        let from = Date(timeIntervalSince1970: Double(start) * 86_400)
        guard Timestamp.range.contains(from) else { return nil }
        return (from, Date(timeIntervalSince1970: Double(next) * 86_400 - 0.001))
    }

    /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (years 1-9999).
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

enum FHIRNumber {
    /// A JSON number as a decimal, through its shortest decimal form (so 0.1 is 0.1, not a binary
    /// approximation of it).
    static func decimal(_ number: Double) -> Decimal {
        Decimal(string: ECMAScriptNumber.format(number)) ?? Decimal(number)
    }
}
