import GS1

/// Why a UDI carrier string could not be read: a stable code and a sentence naming the part.
public struct UDIError: Error, Equatable, CustomStringConvertible {
    public let code: String
    public let message: String
    public var description: String { message }

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// The FDA-accredited issuing agencies, and the FHIR naming systems `udiCarrier.issuer` uses for them.
public enum IssuingAgency: String, Sendable, CaseIterable {
    case gs1, hibcc, iccbba

    public var namingSystems: [String] {
        switch self {
        case .gs1: ["http://hl7.org/fhir/NamingSystem/gs1", "http://hl7.org/fhir/NamingSystem/gs1-di"]
        case .hibcc: ["http://hl7.org/fhir/NamingSystem/hibcc", "http://hl7.org/fhir/NamingSystem/hibcc-dI"]
        case .iccbba: ["http://hl7.org/fhir/NamingSystem/iccbba-other", "http://hl7.org/fhir/NamingSystem/iccbba-blood",
                       "http://hl7.org/fhir/NamingSystem/iccbba-other-di", "http://hl7.org/fhir/NamingSystem/iccbba-blood-di"]
        }
    }
}

/// A production date as a label carries it: some formats give only a month (HIBCC `MMYY`).
public struct UDIDate: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int?

    /// nil when there is no such month or day.
    public init?(year: Int, month: Int, day: Int?) {
        guard (1...9999).contains(year), (1...12).contains(month) else { return nil }
        if let day, !(1...GS1Date.daysIn(month: month, year: year)).contains(day) { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// Day `ordinal` (1-based) of `year`, as Julian-date formats give it.
    init?(year: Int, dayOfYear ordinal: Int) {
        var remaining = ordinal
        guard remaining >= 1 else { return nil }
        for month in 1...12 {
            let days = GS1Date.daysIn(month: month, year: year)
            if remaining <= days {
                self.init(year: year, month: month, day: remaining)
                return
            }
            remaining -= days
        }
        return nil
    }

    /// `YYYY-MM-DD`, or `YYYY-MM` when the label gives only the month (both FHIR dateTime forms).
    public var description: String {
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let yyyy = String(repeating: "0", count: max(0, 4 - String(year).count)) + String(year)
        return day.map { "\(yyyy)-\(two(month))-\(two($0))" } ?? "\(yyyy)-\(two(month))"
    }

    /// Whether a FHIR date or dateTime names this date (its date part; a month-only label matches any day of the month).
    public func agrees(with fhir: String) -> Bool {
        let datePart = String(fhir.prefix(while: { $0 != "T" }))
        return day == nil ? datePart.hasPrefix(description) : datePart == description
    }
}

/// A Unique Device Identifier read from its carrier: the device identifier (DI) and the production
/// identifiers (PI) the label carries.
public struct UDI: Equatable, Sendable {
    public let agency: IssuingAgency
    public internal(set) var deviceIdentifier: String
    public var lot: String?
    public var serial: String?
    public var manufactureDate: UDIDate?
    public var expiryDate: UDIDate?
    /// ICCBBA's distinct identification code (the Donation Identification Number) of an HCT/P device.
    public var distinctIdentifier: String?

    init(agency: IssuingAgency, deviceIdentifier: String) {
        self.agency = agency
        self.deviceIdentifier = deviceIdentifier
    }

    /// Reads a carrier in any of the three agencies' formats: GS1 element strings (bracketed, or raw
    /// with `]d2` and GS separators), HIBCC (`+…`, mod-43 checked) and ISBT 128 (`=/…`).
    /// `referenceYear` settles the century of GS1's two-digit years.
    public static func parse(_ text: String, referenceYear: Int) throws(UDIError) -> UDI {
        guard !text.isEmpty else { throw UDIError("unknown_udi_format", "the UDI carrier is empty") }
        guard text.utf8.count <= 512 else { throw UDIError("unknown_udi_format", "a UDI carrier is at most 512 characters") }
        switch text.utf8.first ?? 0 {
        case UInt8(ascii: "+"): return try HIBCCCarrier.parse(text)
        case UInt8(ascii: "="), UInt8(ascii: "&"): return try ISBT128Carrier.parse(text)
        case UInt8(ascii: "("), UInt8(ascii: "]"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try gs1(text, referenceYear: referenceYear)
        default:
            throw UDIError("unknown_udi_format", "not a UDI of GS1 (`(01)…`), HIBCC (`+…`) or ICCBBA (`=/…`): it begins with \"\(text.prefix(3))\"")
        }
    }

    private static func gs1(_ text: String, referenceYear: Int) throws(UDIError) -> UDI {
        do {
            let element = try ElementString(text, referenceYear: referenceYear)
            guard let di = element.value(of: "01") else { throw UDIError("missing_di", "a GS1 UDI carries its device identifier as the GTIN (01)") }
            var udi = UDI(agency: .gs1, deviceIdentifier: try GTIN(di).digits)
            udi.lot = element.value(of: "10")
            udi.serial = element.value(of: "21")
            func date(_ ai: String, _ field: String) throws(GS1IdentifierError) -> UDIDate? {
                guard let value = element.value(of: ai) else { return nil }
                let parsed = try GS1Date(yymmdd: value, referenceYear: referenceYear, field: field)
                return UDIDate(year: parsed.year, month: parsed.month, day: parsed.day)
            }
            udi.manufactureDate = try date("11", "manufacture date (11)")
            udi.expiryDate = try date("17", "expiry date (17)")
            return udi
        } catch let error as UDIError {
            throw error
        } catch let error as GS1IdentifierError {
            throw UDIError(error.code, error.message)
        } catch {
            throw UDIError("malformed_udi", "\(error)")
        }
    }

    /// Which part of a FHIR `udiCarrier.deviceIdentifier` (and `issuer`, when given) disagrees with
    /// this carrier, or nil when they agree. A GS1 DI may be written as 8, 12, 13 or 14 digits; the
    /// HIBCC and ICCBBA ones with or without their flag characters (`+`, `=/`).
    public func disagreement(deviceIdentifier given: String, issuer: String?) -> String? {
        if let issuer, !agency.namingSystems.contains(issuer) {
            return "issuer \(issuer) is not \(agency.rawValue.uppercased()), whose format the carrier is in"
        }
        let same: Bool
        switch agency {
        case .gs1: same = (try? GTIN(given))?.digits == deviceIdentifier
        case .hibcc: same = given == deviceIdentifier || given == "+" + deviceIdentifier
        case .iccbba: same = given == deviceIdentifier || given == "=/" + deviceIdentifier
        }
        return same ? nil : "deviceIdentifier \(given) differs from the carrier's device identifier \(deviceIdentifier)"
    }
}
