import FoundationEssentials
import Ledger

/// An amount of money, exact: FHIR Money values are decimals, and sums of them must not drift the
/// way binary floating point does (0.1 + 0.2).
struct Money: Equatable, Sendable, CustomStringConvertible {
    static let maximum = Decimal(1_000_000_000_000)

    let value: Decimal
    let currency: String

    var description: String { "\(value) \(currency)" }

    /// A FHIR Money at `path`: `value` a number (as the JSON wrote it) and `currency` a three-letter code.
    init(_ json: JSONValue?, path: String) throws(DomainError) {
        guard case .object = json else { throw DomainError.invalidResource(path, "must be a Money object with value and currency") }
        self.value = try Self.decimal(json?["value"], path: "\(path).value")
        guard let currency = json?["currency"]?.stringValue, currency.utf8.count == 3, currency.utf8.allSatisfy({ (65...90).contains($0) }) else {
            throw DomainError.invalidResource("\(path).currency", "must be a three-letter ISO 4217 code")
        }
        self.currency = currency
    }

    init(value: Decimal, currency: String) {
        self.value = value
        self.currency = currency
    }

    /// A JSON number as the exact decimal its shortest form spells (135.57, not 135.56999...).
    static func decimal(_ json: JSONValue?, path: String) throws(DomainError) -> Decimal {
        guard let number = json?.numberValue else { throw DomainError.invalidResource(path, "must be a number") }
        guard let decimal = Decimal(string: ECMAScriptNumber.format(number)), decimal.magnitude < maximum else {
            throw DomainError.invalidResource(path, "is out of range")
        }
        return decimal
    }

    /// The FHIR Money JSON for this amount.
    var json: JSONValue {
        .object([("value", .number(Double("\(value)") ?? 0)), ("currency", .string(currency))])
    }
}

/// A FHIR R4 Claim as CareLedger accepts it for submission: the fields an insurer needs are there and
/// well formed, and the items add up (to `total`, when the claim states one). The document itself
/// travels unchanged; this is only what the hub reads from it.
struct FHIRClaim: Sendable {
    static let uses: Set<String> = ["claim", "preauthorization", "predetermination"]

    let document: JSONValue
    let total: Money
    /// Each item's productOrService codings, as `code` and `system|code`.
    let itemCodes: [Set<String>]
    let typeCodes: Set<String>
    /// The dates services were given (items', else the billable period's end, else `created`),
    /// as `YYYY-MM-DD`; partial dates stand for their last possible day.
    let serviceDates: [String]

    init(_ value: JSONValue, path: String = "claim") throws(DomainError) {
        guard case .object = value else { throw DomainError.invalidResource(path, "must be a FHIR Claim (a JSON object)") }
        guard value["resourceType"]?.stringValue == "Claim" else { throw DomainError.invalidResource("\(path).resourceType", "must be \"Claim\"") }
        guard value["status"]?.stringValue == "active" else { throw DomainError.invalidResource("\(path).status", "must be \"active\" to be submitted") }
        guard let use = value["use"]?.stringValue, Self.uses.contains(use) else {
            throw DomainError.invalidResource("\(path).use", "must be one of \(Self.uses.sorted().joined(separator: ", "))")
        }
        for field in ["type", "patient", "provider", "priority"] {
            guard case .object = value[field] else { throw DomainError.invalidResource("\(path).\(field)", "is missing or not an object") }
        }
        guard let created = value["created"]?.stringValue, let createdDate = Self.day(created) else {
            throw DomainError.invalidResource("\(path).created", "must be a FHIR dateTime")
        }
        guard case .array(let insurance) = value["insurance"], !insurance.isEmpty, insurance.allSatisfy({ if case .object = $0 { true } else { false } }) else {
            throw DomainError.invalidResource("\(path).insurance", "must be a non-empty array of objects")
        }
        guard case .array(let items) = value["item"], !items.isEmpty else { throw DomainError.invalidResource("\(path).item", "must be a non-empty array") }

        var sum: Decimal = 0
        var currency: String?
        var itemCodes: [Set<String>] = []
        var serviceDates: [String] = []
        for (index, item) in items.enumerated() {
            let itemPath = "\(path).item[\(index)]"
            guard case .object = item else { throw DomainError.invalidResource(itemPath, "must be an object") }
            guard case .object = item["productOrService"] else { throw DomainError.invalidResource("\(itemPath).productOrService", "is missing or not an object") }
            itemCodes.append(Self.codes(item["productOrService"]))
            let amount = try Self.amount(of: item, path: itemPath)
            if let currency, currency != amount.currency {
                throw DomainError.invalidResource("\(itemPath).net", "is in \(amount.currency), other items in \(currency)")
            }
            currency = amount.currency
            sum += amount.value
            if let date = item["servicedDate"]?.stringValue ?? item["servicedPeriod"]?["end"]?.stringValue, let day = Self.day(date) {
                serviceDates.append(day)
            }
        }
        guard sum >= 0, let currency else { throw DomainError.invalidResource("\(path).item", "must not add up to less than zero") }
        let computed = Money(value: sum, currency: currency)
        if let stated = value["total"] {
            let total = try Money(stated, path: "\(path).total")
            guard total == computed else { throw DomainError.invalidResource("\(path).total", "is \(total) but the items add up to \(computed)") }
        }
        if serviceDates.isEmpty {
            serviceDates.append(value["billablePeriod"]?["end"]?.stringValue.flatMap(Self.day) ?? createdDate)
        }
        document = value
        total = computed
        self.itemCodes = itemCodes
        typeCodes = Self.codes(value["type"])
        self.serviceDates = serviceDates
    }

    /// An item's amount: `net`, else `unitPrice` times `quantity` and `factor` (each 1 when absent).
    private static func amount(of item: JSONValue, path: String) throws(DomainError) -> Money {
        if let net = item["net"] { return try Money(net, path: "\(path).net") }
        guard let price = item["unitPrice"] else { throw DomainError.invalidResource(path, "needs net or unitPrice") }
        let unitPrice = try Money(price, path: "\(path).unitPrice")
        let quantity = item["quantity"] == nil ? 1 : try Money.decimal(item["quantity"]?["value"], path: "\(path).quantity.value")
        let factor = item["factor"] == nil ? 1 : try Money.decimal(item["factor"], path: "\(path).factor")
        return Money(value: unitPrice.value * quantity * factor, currency: unitPrice.currency)
    }

    /// A CodeableConcept's codes, bare and as `system|code`.
    static func codes(_ concept: JSONValue?) -> Set<String> {
        guard case .array(let codings) = concept?["coding"] else { return [] }
        var codes: Set<String> = []
        for coding in codings {
            guard let code = coding["code"]?.stringValue else { continue }
            codes.insert(code)
            if let system = coding["system"]?.stringValue { codes.insert("\(system)|\(code)") }
        }
        return codes
    }

    /// The calendar day of a FHIR date or dateTime (`YYYY`, `YYYY-MM`, `YYYY-MM-DD...`), a partial
    /// date standing for its last possible day so that "after" comparisons err towards "after".
    static func day(_ text: String) -> String? {
        let utf8 = Array(text.utf8)
        func digits(_ range: Range<Int>) -> Bool { range.upperBound <= utf8.count && utf8[range].allSatisfy { (48...57).contains($0) } }
        guard digits(0..<4) else { return nil }
        if utf8.count == 4 { return text + "-12-31" }
        guard utf8.count >= 7, utf8[4] == UInt8(ascii: "-"), digits(5..<7) else { return nil }
        if utf8.count == 7 { return text + "-31" }
        guard utf8.count >= 10, utf8[7] == UInt8(ascii: "-"), digits(8..<10) else { return nil }
        return String(decoding: utf8[0..<10], as: UTF8.self)
    }
}

/// A FHIR R4 ClaimResponse as an insurer's adjudication: an outcome, and amounts that fit the claim.
struct FHIRClaimResponse: Sendable {
    static let outcomes: Set<String> = ["complete", "error", "partial"]

    let document: JSONValue
    let outcome: String
    let payment: Money?

    init(_ value: JSONValue, claimTotal: Money) throws(DomainError) {
        let path = "ClaimResponse"
        guard case .object = value else { throw DomainError.invalidResource(path, "must be a FHIR ClaimResponse (a JSON object)") }
        guard value["resourceType"]?.stringValue == "ClaimResponse" else { throw DomainError.invalidResource("resourceType", "must be \"ClaimResponse\"") }
        guard let outcome = value["outcome"]?.stringValue, Self.outcomes.contains(outcome) else {
            throw DomainError.invalidResource("outcome", "must be one of \(Self.outcomes.sorted().joined(separator: ", "))")
        }
        if let disposition = value["disposition"], disposition.stringValue == nil { throw DomainError.invalidResource("disposition", "must be a string") }
        var payment: Money?
        if let paymentValue = value["payment"] {
            let amount = try Money(paymentValue["amount"], path: "payment.amount")
            guard amount.currency == claimTotal.currency else { throw DomainError.invalidResource("payment.amount.currency", "must be the claim's, \(claimTotal.currency)") }
            guard amount.value >= 0, amount.value <= claimTotal.value else {
                throw DomainError.invalidResource("payment.amount.value", "must be from 0 to the claim's total, \(claimTotal)")
            }
            payment = amount
        }
        if let items = value["item"] {
            guard case .array(let list) = items else { throw DomainError.invalidResource("item", "must be an array") }
            for (index, item) in list.enumerated() {
                guard let sequence = item["itemSequence"]?.numberValue, sequence >= 1, sequence == sequence.rounded() else {
                    throw DomainError.invalidResource("item[\(index)].itemSequence", "must be a positive integer")
                }
                guard case .array(let adjudications) = item["adjudication"], !adjudications.isEmpty,
                      adjudications.allSatisfy({ if case .object = $0["category"] { true } else { false } }) else {
                    throw DomainError.invalidResource("item[\(index)].adjudication", "must be a non-empty array of adjudications with a category")
                }
            }
        }
        document = value
        self.outcome = outcome
        self.payment = payment
    }
}
