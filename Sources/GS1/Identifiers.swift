/// Why an identifier as scanned or sent cannot be read, in words a pharmacist's system can show.
public struct GS1IdentifierError: Error, Equatable, CustomStringConvertible {
    /// A stable code: `gtin_check_digit`, `bad_expiry`, `cannot_split`, `unknown_ai`, `malformed`, ...
    public let code: String
    public let message: String
    public var description: String { message }

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// A trade item's GTIN, always held as 14 digits with a valid check digit.
public struct GTIN: Hashable, Sendable, CustomStringConvertible {
    public let digits: String
    public var description: String { digits }

    /// GTIN-8, -12, -13 or -14, left-padded with zeros to 14 digits.
    public init(_ text: some StringProtocol) throws(GS1IdentifierError) {
        guard GS1CheckDigit.allDigits(text), [8, 12, 13, 14].contains(text.count) else {
            throw GS1IdentifierError("malformed_gtin", "a GTIN is 8, 12, 13 or 14 digits, not \"\(text.prefix(40))\"")
        }
        let padded = String(repeating: "0", count: 14 - text.count) + text
        guard GS1CheckDigit.isValid(padded) else {
            throw GS1IdentifierError("gtin_check_digit", "GTIN \(padded) has a wrong check digit (expected \(GS1CheckDigit.compute(padded.dropLast()).map(String.init) ?? "?"))")
        }
        digits = padded
    }

    /// Whether the GTIN belongs to the company prefix (given as its digits).
    public func belongs(toCompanyPrefix prefix: String) -> Bool {
        // Digit 0 is the indicator (or padding); the company prefix starts at digit 1.
        digits.dropFirst().hasPrefix(prefix)
    }
}

/// The canonical key of a serialized pack: GTIN-14 and serial number (AI 21).
public struct PackKey: Hashable, Sendable, CustomStringConvertible {
    public let gtin: GTIN
    public let serial: String

    public init(gtin: GTIN, serial: String) throws(GS1IdentifierError) {
        guard GS1Characters.isValidSerial(serial) else {
            throw GS1IdentifierError("malformed_serial", "a serial number is 1 to 20 characters of GS1 set 82")
        }
        self.gtin = gtin
        self.serial = serial
    }

    public var description: String { "\(gtin.digits)/\(serial)" }

    /// The canonical GS1 Digital Link URI of the pack.
    public var digitalLink: String { "https://id.gs1.org/01/\(gtin.digits)/21/\(DigitalLink.percentEncode(serial))" }

    /// The SGTIN EPC URN, which needs the length of the GTIN's company prefix (6 to 12 digits).
    public func sgtinURN(companyPrefixLength length: Int) -> String? {
        guard (6...12).contains(length) else { return nil }
        let body = gtin.digits.dropFirst().dropLast()          // 12 digits: prefix then item reference
        let prefix = body.prefix(length)
        let itemReference = String(gtin.digits.prefix(1)) + body.dropFirst(length)
        return "urn:epc:id:sgtin:\(prefix).\(itemReference).\(EPCURN.escape(serial))"
    }
}

/// A logistic unit's SSCC: 18 digits with a valid check digit.
public struct SSCC: Hashable, Sendable {
    public let digits: String

    public init(_ text: some StringProtocol) throws(GS1IdentifierError) {
        digits = try GS1CheckDigit.checkedKey(text, length: 18, name: "SSCC")
    }

    public var digitalLink: String { "https://id.gs1.org/00/\(digits)" }
}

/// A site's GLN: 13 digits with a valid check digit.
public struct GLN: Hashable, Sendable {
    public let digits: String

    public init(_ text: some StringProtocol) throws(GS1IdentifierError) {
        digits = try GS1CheckDigit.checkedKey(text, length: 13, name: "GLN")
    }
}

extension GS1CheckDigit {
    /// A fixed-length numeric key with its check digit: `malformed_{name}` or `{name}_check_digit` otherwise.
    static func checkedKey(_ text: some StringProtocol, length: Int, name: String) throws(GS1IdentifierError) -> String {
        let code = name.lowercased()
        guard allDigits(text), text.count == length else { throw GS1IdentifierError("malformed_\(code)", "a \(name) is \(length) digits") }
        guard isValid(text) else { throw GS1IdentifierError("\(code)_check_digit", "\(name) \(text) has a wrong check digit") }
        return String(text)
    }
}

/// GS1 AI encodable character set 82 (General Specifications 7.11, figure 7.11-1).
public enum GS1Characters {
    public static func isSet82(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "A"..."Z", "a"..."z", "0"..."9": true
        case "!", "\"", "%", "&", "'", "(", ")", "*", "+", ",", "-", ".", "/", ":", ";", "<", "=", ">", "?", "_": true
        default: false
        }
    }

    public static func isValidSerial(_ text: String) -> Bool {
        (1...20).contains(text.unicodeScalars.count) && text.unicodeScalars.allSatisfy(isSet82)
    }
}
